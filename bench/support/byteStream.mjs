// The ceiling for a transfer between two gateways: grpc-js moving bytes and nothing else, one
// client stream of 1 MiB messages (serializers that pass the bytes as they are) from this
// process to a server in a child process over a unix socket. No disk, no hashing, no protobuf.
// argv[2]: "wide" for the gateways' HTTP/2 windows (src/grpc/transferWindows.ts), "default"
// for grpc-js's; argv[3]: the socket path; argv[4]: bytes (1 GiB by default). Prints one line
// of JSON: {"bytes", "seconds", "clientCpuSeconds", "serverCpuSeconds"}.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { credentials, makeGenericClientConstructor, Server, ServerCredentials } from "@grpc/grpc-js";
import { transferChannelOptions, widenServerWindows } from "../../dist/src/grpc/transferWindows.js";

const [windows = "wide", socket = "/tmp/criu-gw-byte-stream.sock", total = String(1 << 30), role] =
  process.argv.slice(2);
const CHUNK = 1 << 20;
const same = (bytes) => bytes;
const method = {
  path: "/bench.ByteStream/Send",
  requestStream: true,
  responseStream: false,
  requestSerialize: same,
  requestDeserialize: same,
  responseSerialize: same,
  responseDeserialize: same,
};
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (role === "server") {
  const server = new Server();
  if (windows === "wide") widenServerWindows(server);
  server.addService(
    { send: method },
    {
      send(call, callback) {
        let bytes = 0;
        call.on("data", (data) => {
          bytes += data.length;
        });
        call.on("end", () => callback(null, Buffer.from(JSON.stringify({ bytes, cpu: cpuSeconds() }))));
      },
    },
  );
  rmSync(socket, { force: true });
  server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    process.stdout.write("listening\n");
  });
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
} else {
  const child = spawn(process.execPath, [import.meta.filename, windows, socket, total, "server"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await once(createInterface({ input: child.stdout }), "line");
  const Client = makeGenericClientConstructor({ send: method }, "ByteStream");
  const client = new Client(
    `unix:${socket}`,
    credentials.createInsecure(),
    windows === "wide" ? transferChannelOptions : {},
  );
  const data = Buffer.alloc(CHUNK, 7);
  const cpuBefore = cpuSeconds();
  const started = process.hrtime.bigint();
  const reply = await new Promise((resolve, reject) => {
    const call = client.send((err, res) => (err ? reject(err) : resolve(JSON.parse(res.toString()))));
    let sent = 0;
    const pump = () => {
      while (sent < Number(total)) {
        sent += CHUNK;
        if (!call.write(data)) {
          call.once("drain", pump);
          return;
        }
      }
      call.end();
    };
    pump();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  client.close();
  child.stdin.end();
  await once(child, "exit");
  rmSync(socket, { force: true });
  process.stdout.write(
    `${JSON.stringify({ bytes: reply.bytes, seconds, clientCpuSeconds: cpuSeconds() - cpuBefore, serverCpuSeconds: reply.cpu })}\n`,
  );
}
