// Checkpoint transfer between two gateways, each in its own process: first the ceiling (grpc-js
// moving bytes between two processes); then PushCheckpoint of a 1 GiB checkpoint over a unix
// socket and over loopback TCP with mutual TLS, without compression (throughput, each gateway's
// RSS growth, CPU time and most chunks held) and with zstd on bytes that do not compress; then a
// real process's heap (Python objects, dumped by CRIU) with and without zstd, on loopback and on
// a link throttled to 100 Mbit/s. Run with `npm run bench:micro`; the figures are printed at the end.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { connect, createServer, type Server as NetServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { CriuServiceClient, TransferCompression } from "../gen/criu/gateway/v1/gateway.js";
import { issue, makeCa } from "../test/support/certs.js";
import { call, criuBin, dumpWith } from "../test/support/gateway.js";
import { pushAll } from "../test/support/transfer.js";
import { type Counter, startCounter } from "../test/support/workload.js";

const run = promisify(execFile);
const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/**
 * 100 Mbit/s in bytes per second: a link between sites, well below what one core compresses
 * with zstd at level 1, as links between hosts usually are.
 */
const SLOW_LINK_BYTES_PER_S = 12_500_000;

class GatewayProcess {
  readonly #replies: ((line: string) => void)[] = [];
  private constructor(
    readonly child: ChildProcess,
    readonly addresses: string[],
  ) {}

  static async start(config: Record<string, unknown>): Promise<GatewayProcess> {
    const child = spawn(
      "node",
      [join(import.meta.dirname, "support", "gatewayProcess.mjs"), JSON.stringify(config)],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const first = await new Promise<string>((resolve) => lines.once("line", resolve));
    const gw = new GatewayProcess(child, (JSON.parse(first) as { addresses: string[] }).addresses);
    lines.on("line", (line) => gw.#replies.shift()?.(line));
    return gw;
  }

  ask<T>(line: string): Promise<T> {
    return new Promise((resolve) => {
      this.#replies.push((reply) => resolve(JSON.parse(reply) as T));
      this.child.stdin?.write(`${line}\n`);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.stdin?.end();
    await exited;
  }
}

/** A TCP relay that passes at most `bytesPerSecond` each way: a slower link between hosts. */
function throttledRelay(target: { host: string; port: number }, bytesPerSecond: number): Promise<NetServer> {
  const pace = (
    from: NodeJS.ReadableStream & { pause(): void; resume(): void },
    to: NodeJS.WritableStream,
  ) => {
    const started = Date.now();
    let sent = 0;
    from.on("data", (data: Buffer) => {
      sent += data.length;
      to.write(data);
      const ahead = sent / bytesPerSecond - (Date.now() - started) / 1000;
      if (ahead > 0.005) {
        from.pause();
        setTimeout(() => from.resume(), ahead * 1000);
      }
    });
    from.on("end", () => to.end());
  };
  const server = createServer((inbound) => {
    const outbound = connect(target.port, target.host);
    pace(inbound, outbound);
    pace(outbound, inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

interface Figures {
  scenario: string;
  bytes: number;
  wireBytes: number;
  seconds: number;
  sourceRssGrowthMiB: number;
  targetRssGrowthMiB: number;
  sourceMaxChunks: number;
  targetMaxChunks: number;
  /** CPU time each side's process spent on the transfer. */
  sourceCpuSeconds: number;
  targetCpuSeconds: number;
}

const results: Figures[] = [];
let dir: string;
let a: GatewayProcess;
let b: GatewayProcess;
let client: CriuServiceClient;
let bClient: CriuServiceClient;
let relay: NetServer;
let targets: { unix: string; tls: string; slow: string };
let heap: Counter | undefined;
let runs = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-bench-transfer-"));
  const ca = makeCa(dir, "ca");
  issue(dir, ca, "server", "gateway-b", ["DNS:localhost", "IP:127.0.0.1"]);
  issue(dir, ca, "gateway-a", "gateway-a", []);
  writeFileSync(
    join(dir, "policy.json"),
    JSON.stringify({
      grants: [
        { name: "root", identities: [{ unix_uid: 0 }], admin: true },
        {
          name: "gateway-a",
          identities: [{ cert_cn: "gateway-a" }],
          rpcs: ["ImportCheckpoint"],
          checkpoints: { write: ["*"] },
        },
      ],
    }),
  );
  b = await GatewayProcess.start({
    listen: [`unix:${join(dir, "b.sock")}`, "127.0.0.1:0"],
    imagesRoot: join(dir, "b"),
    criuBin: criuBin(),
    tls: { certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key"), clientCaFile: ca.cert },
    policyFile: join(dir, "policy.json"),
    auditLog: join(dir, "b-audit.log"),
  });
  const tcp = b.addresses[1] ?? "";
  relay = await throttledRelay({ host: "127.0.0.1", port: Number(tcp.split(":")[1]) }, SLOW_LINK_BYTES_PER_S);
  const relayPort = (relay.address() as { port: number }).port;
  targets = { unix: b.addresses[0] ?? "", tls: tcp, slow: `127.0.0.1:${relayPort}` };
  a = await GatewayProcess.start({
    listen: [`unix:${join(dir, "a.sock")}`],
    imagesRoot: join(dir, "a"),
    auditLog: join(dir, "a-audit.log"),
    criuBin: criuBin(),
    pushTargets: Object.values(targets),
    pushTls: {
      caFile: ca.cert,
      certFile: join(dir, "gateway-a.pem"),
      keyFile: join(dir, "gateway-a.key"),
      serverName: "localhost",
    },
  });
  client = new CriuServiceClient(a.addresses[0] ?? "", credentials.createInsecure());
  bClient = new CriuServiceClient(b.addresses[0] ?? "", credentials.createInsecure());
  plantIncompressible(join(dir, "a"), "one-gib", GiB);
  // A real heap: a Python process holding half a million small objects, dumped by CRIU.
  heap = await startCounter(dir, "heap", {
    setup:
      "users = {i: ('user%d@example.org' % i, [i, i * 2, i % 97], {'score': i / 7}) for i in range(500_000)}\n",
  });
  await dumpWith(client, "python-heap", { pid: heap.pid });
  await heap.exited;
}, 600_000);

afterAll(async () => {
  heap?.kill();
  const rows = results.map((r) => ({
    scenario: r.scenario,
    "MB/s": (r.bytes / r.seconds / 1e6).toFixed(0),
    seconds: r.seconds.toFixed(1),
    MiB: (r.bytes / MiB).toFixed(0),
    "wire MiB": (r.wireBytes / MiB).toFixed(0),
    ratio: (r.bytes / r.wireBytes).toFixed(2),
    "A RSS +MiB": r.sourceRssGrowthMiB.toFixed(1),
    "B RSS +MiB": r.targetRssGrowthMiB.toFixed(1),
    "A chunks": r.sourceMaxChunks,
    "B chunks": r.targetMaxChunks,
    "A CPU s": r.sourceCpuSeconds.toFixed(1),
    "B CPU s": r.targetCpuSeconds.toFixed(1),
  }));
  const [load1] = loadavg();
  console.log(`\nPushCheckpoint between two gateway processes (load average ${load1?.toFixed(1)})`);
  console.table(rows);
  client?.close();
  bClient?.close();
  relay?.close();
  await a?.stop();
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A published checkpoint of one file of random bytes (64 MiB of them, repeated). */
function plantIncompressible(imagesRoot: string, id: string, size: number): void {
  const path = join(imagesRoot, id);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(path, "meta.json"),
    JSON.stringify({
      formatVersion: 1,
      createTime: new Date().toISOString(),
      rootPid: 0,
      criuVersion: "4.2.1",
      leaveRunning: false,
      kind: "dump",
    }),
  );
  const block = randomBytes(64 * MiB);
  const fd = openSync(join(path, "pages-1.img"), "w", 0o600);
  for (let written = 0; written < size; written += block.length) writeSync(fd, block);
  closeSync(fd);
}

type Rss = { rssBytes: number; peakBytes: number; maxBufferedChunks: number; cpuSeconds: number };

async function push(
  scenario: string,
  checkpointId: string,
  target: string,
  compression: TransferCompression,
): Promise<void> {
  // The bench runner may call a bench more than once; a 1 GiB transfer is measured once.
  if (results.some((r) => r.scenario === scenario)) return;
  const as = `copy-${++runs}`;
  const before = await Promise.all([a.ask<Rss>("rss"), b.ask<Rss>("rss")]);
  await Promise.all([a.ask("reset"), b.ask("reset")]);
  const started = process.hrtime.bigint();
  const messages = await pushAll(client, { checkpointId, target, targetCheckpointId: as, compression });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const [ra, rb] = await Promise.all([a.ask<Rss>("rss"), b.ask<Rss>("rss")]);
  const result = messages.at(-1)?.result;
  results.push({
    scenario,
    bytes: result?.bytes ?? 0,
    wireBytes: result?.wireBytes ?? 0,
    seconds,
    sourceRssGrowthMiB: (ra.peakBytes - (before[0]?.rssBytes ?? 0)) / MiB,
    targetRssGrowthMiB: (rb.peakBytes - (before[1]?.rssBytes ?? 0)) / MiB,
    sourceMaxChunks: ra.maxBufferedChunks,
    targetMaxChunks: rb.maxBufferedChunks,
    sourceCpuSeconds: ra.cpuSeconds - (before[0]?.cpuSeconds ?? 0),
    targetCpuSeconds: rb.cpuSeconds - (before[1]?.cpuSeconds ?? 0),
  });
  await call((cb) => bClient.deleteCheckpoint({ checkpointId: as }, cb));
}

const NONE = TransferCompression.TRANSFER_COMPRESSION_NONE;
const ZSTD = TransferCompression.TRANSFER_COMPRESSION_ZSTD;
const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

/**
 * The ceiling: grpc-js moving 1 GiB of bytes and nothing else between two processes over a unix
 * socket (bench/support/byteStream.mjs), with grpc-js's default HTTP/2 windows and with the
 * gateways' wider ones.
 */
async function ceiling(scenario: string, windows: "default" | "wide"): Promise<void> {
  if (results.some((r) => r.scenario === scenario)) return;
  const { stdout } = await run(process.execPath, [
    join(import.meta.dirname, "support", "byteStream.mjs"),
    windows,
    join(dir, `byte-stream-${windows}.sock`),
  ]);
  const out = JSON.parse(stdout) as {
    bytes: number;
    seconds: number;
    clientCpuSeconds: number;
    serverCpuSeconds: number;
  };
  results.push({
    scenario,
    bytes: out.bytes,
    wireBytes: out.bytes,
    seconds: out.seconds,
    sourceRssGrowthMiB: Number.NaN,
    targetRssGrowthMiB: Number.NaN,
    sourceMaxChunks: 0,
    targetMaxChunks: 0,
    sourceCpuSeconds: out.clientCpuSeconds,
    targetCpuSeconds: out.serverCpuSeconds,
  });
}

describe("ceiling: grpc-js moving bytes between two processes, unix socket", () => {
  bench("default windows", () => ceiling("ceiling: grpc-js bytes, 64 KiB windows", "default"), once);
  bench("the gateways' windows", () => ceiling("ceiling: grpc-js bytes, gateway windows", "wide"), once);
});

describe("1 GiB checkpoint, no compression", () => {
  bench(
    "unix socket, first push (hashes the files)",
    () => push("1 GiB, unix, first (hashing)", "one-gib", targets.unix, NONE),
    once,
  );
  bench("unix socket", () => push("1 GiB, unix", "one-gib", targets.unix, NONE), once);
  bench("loopback TCP with mutual TLS", () => push("1 GiB, TLS", "one-gib", targets.tls, NONE), once);
  bench(
    "unix socket, zstd on bytes that do not compress",
    () => push("1 GiB, unix, zstd (incompressible)", "one-gib", targets.unix, ZSTD),
    once,
  );
});

describe("a Python process's heap", () => {
  bench("unix socket, none", () => push("heap, unix, none", "python-heap", targets.unix, NONE), once);
  bench("unix socket, zstd", () => push("heap, unix, zstd", "python-heap", targets.unix, ZSTD), once);
  bench(
    "100 Mbit/s link (TLS), none",
    () => push("heap, 100 Mbit/s, none", "python-heap", targets.slow, NONE),
    once,
  );
  bench(
    "100 Mbit/s link (TLS), zstd",
    () => push("heap, 100 Mbit/s, zstd", "python-heap", targets.slow, ZSTD),
    once,
  );
});
