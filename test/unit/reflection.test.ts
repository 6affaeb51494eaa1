// Server reflection over a real grpc-js server on a unix socket, checked the way strict clients
// check it: every returned file must come with the files it imports, so imported types resolve.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CriuServiceServer, CriuServiceService } from "../../gen/criu/gateway/v1/gateway.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection.js";
import { addReflectionServices } from "../../src/grpc/reflectionService.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const descriptorSet = readFileSync(join(root, "gen/descriptors.binpb"));

type Request = v1.ServerReflectionRequest;
type Response = v1.ServerReflectionResponse;
type ReflectionClient = v1.ServerReflectionClient | v1alpha.ServerReflectionClient;

interface FileDesc {
  name: string;
  dependency: string[];
}

function decodeFile(bytes: Uint8Array): FileDesc {
  return descriptor.FileDescriptorProto.decode(bytes) as unknown as FileDesc;
}

function request(fields: Partial<Request>): Request {
  return { host: "", ...fields };
}

/** Sends `requests` on one stream, ends it, and collects every response until the server ends. */
function ask(client: ReflectionClient, requests: Request[]): Promise<Response[]> {
  return new Promise((resolve, reject) => {
    const call = client.serverReflectionInfo();
    const responses: Response[] = [];
    call.on("data", (res: Response) => responses.push(res));
    call.on("error", reject);
    call.on("end", () => resolve(responses));
    for (const req of requests) call.write(req);
    call.end();
  });
}

function filesOf(res: Response): Buffer[] {
  expect(res.errorResponse).toBeUndefined();
  expect(res.fileDescriptorResponse).toBeDefined();
  return res.fileDescriptorResponse!.fileDescriptorProto;
}

/**
 * Builds a protobufjs Root from exactly these files, refusing any file whose imports are not among
 * them (as a descriptor pool does), and resolves every type the root references.
 */
function strictRoot(files: Buffer[]): protobuf.Root {
  const names = new Set(files.map((f) => decodeFile(f).name));
  for (const f of files) {
    const file = decodeFile(f);
    for (const dep of file.dependency) {
      if (!names.has(dep)) throw new Error(`${file.name} imports ${dep}, which was not returned`);
    }
  }
  const writer = protobuf.Writer.create();
  for (const f of files) writer.uint32((1 << 3) | 2).bytes(f);
  // protobufjs/ext/descriptor adds Root.fromDescriptor at runtime; its typings do not declare it.
  const Root = protobuf.Root as unknown as { fromDescriptor(set: Uint8Array): protobuf.Root };
  const root = Root.fromDescriptor(writer.finish());
  root.resolveAll();
  return root;
}

/** Every message and enum reachable from the service's methods, by full name. */
function reachableTypes(root: protobuf.Root, serviceName: string): Set<string> {
  const found = new Set<string>();
  const visit = (type: protobuf.Type | protobuf.Enum): void => {
    if (found.has(type.fullName)) return;
    found.add(type.fullName);
    if (type instanceof protobuf.Type) {
      for (const field of type.fieldsArray) {
        field.resolve();
        if (field.resolvedType) visit(field.resolvedType);
      }
    }
  };
  const service = root.lookupService(serviceName);
  for (const method of service.methodsArray) {
    method.resolve();
    visit(method.resolvedRequestType!);
    visit(method.resolvedResponseType!);
  }
  return found;
}

function unimplemented(_call: unknown, callback: grpc.sendUnaryData<never>): void {
  callback({ code: grpc.status.UNIMPLEMENTED, details: "not in this test" });
}

interface Running {
  address: string;
  v1: v1.ServerReflectionClient;
  v1alpha: v1alpha.ServerReflectionClient;
  close(): Promise<void>;
}

async function start(set: Uint8Array, withCriu: boolean): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "reflection-"));
  const address = `unix:${join(dir, "s.sock")}`;
  const server = new grpc.Server();
  addReflectionServices(server, set);
  if (withCriu) {
    const handlers = Object.fromEntries(Object.keys(CriuServiceService).map((name) => [name, unimplemented]));
    server.addService(CriuServiceService, handlers as unknown as CriuServiceServer);
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  const clients = {
    v1: new v1.ServerReflectionClient(address, grpc.credentials.createInsecure()),
    v1alpha: new v1alpha.ServerReflectionClient(address, grpc.credentials.createInsecure()),
  };
  return {
    address,
    ...clients,
    async close() {
      clients.v1.close();
      clients.v1alpha.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("server reflection from gen/descriptors.binpb", () => {
  let running: Running;

  beforeAll(async () => {
    running = await start(descriptorSet, true);
  });

  afterAll(async () => {
    await running?.close();
  });

  it("lists the gateway's service and both reflection services, echoing the request", async () => {
    const [res] = await ask(running.v1, [request({ host: "gateway.test", listServices: "" })]);
    expect(res.validHost).toBe("gateway.test");
    expect(res.originalRequest).toEqual(request({ host: "gateway.test", listServices: "" }));
    const names = res.listServicesResponse!.service.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "criu.gateway.v1.CriuService",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
  });

  it("returns gateway.proto for CriuService together with the files it imports", async () => {
    const [res] = await ask(running.v1, [request({ fileContainingSymbol: "criu.gateway.v1.CriuService" })]);
    const files = filesOf(res).map(decodeFile);
    expect(files[0].name).toBe("criu/gateway/v1/gateway.proto");
    expect(files[0].dependency).toContain("google/protobuf/timestamp.proto");
    expect(files.map((f) => f.name)).toContain("google/protobuf/timestamp.proto");
  });

  it("serves each file's bytes exactly as the descriptor set holds them", async () => {
    const [res] = await ask(running.v1, [request({ fileByFilename: "criu/gateway/v1/gateway.proto" })]);
    // The set's own bytes for the file, read straight off the wire (FileDescriptorSet.file is field 1).
    const reader = protobuf.Reader.create(descriptorSet);
    let original: Uint8Array | undefined;
    while (reader.pos < reader.len && !original) {
      const tag = reader.uint32();
      if (tag !== ((1 << 3) | 2)) throw new Error(`unexpected tag ${tag} in the descriptor set`);
      const bytes = reader.bytes();
      if (decodeFile(bytes).name === "criu/gateway/v1/gateway.proto") original = bytes;
    }
    expect(original).toBeDefined();
    expect(Buffer.compare(filesOf(res)[0], Buffer.from(original!))).toBe(0);
  });

  it("returns files from which every type CriuService's methods use resolves", async () => {
    const [res] = await ask(running.v1, [request({ fileContainingSymbol: "criu.gateway.v1.CriuService" })]);
    const files = filesOf(res);
    const types = reachableTypes(strictRoot(files), "criu.gateway.v1.CriuService");
    expect(types).toContain(".criu.gateway.v1.DumpResponse");
    expect(types).toContain(".criu.gateway.v1.Checkpoint");
    expect(types).toContain(".google.protobuf.Timestamp");
    // The check is strict: gateway.proto alone does not resolve.
    expect(() => strictRoot(files.slice(0, 1))).toThrow(/timestamp\.proto/);
  });

  it("answers the same on grpc.reflection.v1alpha", async () => {
    const requests = [
      request({ listServices: "*" }),
      request({ fileContainingSymbol: "criu.gateway.v1.CriuService" }),
      request({ fileContainingSymbol: "no.such.Symbol" }),
    ];
    const [fromV1, fromV1alpha] = await Promise.all([
      ask(running.v1, requests),
      ask(running.v1alpha, requests),
    ]);
    expect(fromV1alpha).toEqual(fromV1);
    expect(fromV1alpha).toHaveLength(3);
    const files = filesOf(fromV1alpha[1]);
    expect(reachableTypes(strictRoot(files), "criu.gateway.v1.CriuService")).toContain(
      ".google.protobuf.Timestamp",
    );
  });

  it("resolves methods, nested types, fields and enum values to their file", async () => {
    const symbols = [
      "criu.gateway.v1.CriuService.Dump",
      ".criu.gateway.v1.Checkpoint",
      "google.protobuf.Timestamp.seconds",
      "google.protobuf.Any",
    ];
    const responses = await ask(
      running.v1,
      symbols.map((s) => request({ fileContainingSymbol: s })),
    );
    expect(responses.map((r) => decodeFile(filesOf(r)[0]).name)).toEqual([
      "criu/gateway/v1/gateway.proto",
      "criu/gateway/v1/gateway.proto",
      "google/protobuf/timestamp.proto",
      "google/protobuf/any.proto",
    ]);
  });

  it("sends each dependency once per stream but always the file asked for", async () => {
    const responses = await ask(running.v1, [
      request({ fileByFilename: "google/protobuf/timestamp.proto" }),
      request({ fileContainingSymbol: "criu.gateway.v1.CriuService" }),
      request({ fileByFilename: "google/protobuf/timestamp.proto" }),
    ]);
    expect(responses.map((r) => filesOf(r).map((f) => decodeFile(f).name))).toEqual([
      ["google/protobuf/timestamp.proto"],
      ["criu/gateway/v1/gateway.proto"],
      ["google/protobuf/timestamp.proto"],
    ]);
  });

  it("answers unknown names with NOT_FOUND and keeps the stream going, in order", async () => {
    const responses = await ask(running.v1, [
      request({ fileContainingSymbol: "criu.gateway.v1.NoSuchThing" }),
      request({ fileByFilename: "no/such/file.proto" }),
      request({
        fileContainingExtension: { containingType: "criu.gateway.v1.Checkpoint", extensionNumber: 100 },
      }),
      request({ allExtensionNumbersOfType: "criu.gateway.v1.NoSuchMessage" }),
      request({ allExtensionNumbersOfType: "criu.gateway.v1.Checkpoint" }),
      request({}),
    ]);
    expect(responses).toHaveLength(6);
    for (const res of responses.slice(0, 4)) expect(res.errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
    expect(responses[0].errorResponse!.errorMessage).toContain("criu.gateway.v1.NoSuchThing");
    expect(responses[1].errorResponse!.errorMessage).toContain("no/such/file.proto");
    expect(responses[0].originalRequest?.fileContainingSymbol).toBe("criu.gateway.v1.NoSuchThing");
    expect(responses[4].allExtensionNumbersResponse).toEqual({
      baseTypeName: "criu.gateway.v1.Checkpoint",
      extensionNumber: [],
    });
    expect(responses[5].errorResponse?.errorCode).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("satisfies Python's strict descriptor pool (Debian's python3-grpcio and python3-protobuf)", async () => {
    const python = "/usr/bin/python3";
    const run = async (args: string[]): Promise<string> => {
      try {
        return (await promisify(execFile)(python, args, { encoding: "utf8", timeout: 30_000 })).stdout;
      } catch (err) {
        // Report Python's own output, not the command line (which holds the whole script).
        const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
        throw new Error(`${python} failed: ${stderr}${stdout}`);
      }
    };
    const probe = await run(["-c", "import grpc, google.protobuf"]).catch((err: Error) => {
      throw new Error(
        `install Debian's python3-grpcio and python3-protobuf (apt-get install -y python3-grpcio python3-protobuf): ${err.message}`,
      );
    });
    expect(probe).toBe("");
    // An async child process: the server answering it runs on this event loop.
    const stdout = await run(["-c", PYTHON_CLIENT, running.address]);
    const result = JSON.parse(stdout) as Record<string, { services: string[]; types: string[] }>;
    for (const version of ["v1", "v1alpha"]) {
      expect(result[version].services).toEqual(expect.arrayContaining(["criu.gateway.v1.CriuService"]));
      expect(result[version].types).toEqual(
        expect.arrayContaining([
          "criu.gateway.v1.DumpResponse",
          "criu.gateway.v1.Checkpoint",
          "google.protobuf.Timestamp",
        ]),
      );
    }
  });
});

describe("server reflection of extensions", () => {
  // proto2 files with extensions, since the gateway's own protos define none.
  const extensionSet = descriptor.FileDescriptorSet.encode(
    descriptor.FileDescriptorSet.fromObject({
      file: [
        {
          name: "ext/base.proto",
          package: "ext",
          messageType: [{ name: "Base", extensionRange: [{ start: 100, end: 201 }] }],
        },
        {
          name: "ext/more.proto",
          package: "ext",
          dependency: ["ext/base.proto"],
          extension: [{ name: "extra", number: 150, label: 1, type: 5, extendee: ".ext.Base" }],
          messageType: [
            {
              name: "Holder",
              extension: [{ name: "note", number: 120, label: 1, type: 9, extendee: ".ext.Base" }],
            },
          ],
        },
      ],
    }),
  ).finish();
  let running: Running;

  beforeAll(async () => {
    running = await start(extensionSet, false);
  });

  afterAll(async () => {
    await running?.close();
  });

  it("finds extensions by number and by name, and lists a type's extension numbers", async () => {
    const responses = await ask(running.v1, [
      request({ fileContainingExtension: { containingType: "ext.Base", extensionNumber: 150 } }),
      request({ allExtensionNumbersOfType: "ext.Base" }),
      request({ fileContainingSymbol: "ext.Holder.note" }),
      request({ fileContainingExtension: { containingType: "ext.Base", extensionNumber: 151 } }),
    ]);
    expect(filesOf(responses[0]).map((f) => decodeFile(f).name)).toEqual([
      "ext/more.proto",
      "ext/base.proto",
    ]);
    expect(responses[1].allExtensionNumbersResponse).toEqual({
      baseTypeName: "ext.Base",
      extensionNumber: [120, 150],
    });
    expect(filesOf(responses[2]).map((f) => decodeFile(f).name)).toEqual(["ext/more.proto"]);
    expect(responses[3].errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
  });

  it("lists every service the set defines, here none", async () => {
    const [res] = await ask(running.v1alpha, [request({ listServices: "" })]);
    expect(res.listServicesResponse).toEqual({ service: [] });
  });
});

// A reflection client written against raw bytes, since Debian packages no grpc_reflection module.
// It adds the returned files to a DescriptorPool, which refuses a file whose imports it lacks, and
// walks every type CriuService's methods reach. Prints {"v1": {...}, "v1alpha": {...}} as JSON.
const PYTHON_CLIENT = `
import json, sys
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def string_field(number, value):
    data = value.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data

def fields(data):
    i = 0
    while i < len(data):
        key = 0; shift = 0
        while True:
            b = data[i]; i += 1
            key |= (b & 0x7F) << shift; shift += 7
            if not b & 0x80:
                break
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = 0; shift = 0
            while True:
                b = data[i]; i += 1
                value |= (b & 0x7F) << shift; shift += 7
                if not b & 0x80:
                    break
        elif wire == 2:
            size = 0; shift = 0
            while True:
                b = data[i]; i += 1
                size |= (b & 0x7F) << shift; shift += 7
                if not b & 0x80:
                    break
            value = data[i:i + size]; i += size
        elif wire == 1:
            value = data[i:i + 8]; i += 8
        elif wire == 5:
            value = data[i:i + 4]; i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
        yield number, value

def reflect(channel, version, requests):
    call = channel.stream_stream(
        "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return list(call(iter(requests), timeout=20))

def field(data, number):
    return [v for n, v in fields(data) if n == number]

def check(channel, version):
    listing, found = reflect(channel, version, [
        string_field(7, ""), string_field(4, "criu.gateway.v1.CriuService")])
    services = [field(s, 1)[0].decode() for r in field(listing, 6) for s in field(r, 1)]
    errors = field(found, 7)
    if errors:
        raise SystemExit("reflection error: %r" % errors)
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for r in field(found, 4) for b in field(r, 1)]
    pool = descriptor_pool.DescriptorPool()
    added = set()
    pending = list(files)
    while pending:
        ready = [f for f in pending if all(d in added for d in f.dependency)]
        if not ready:
            # An import is missing: let the pool refuse the file, as any Python client's pool would.
            ready = pending[:1]
        for f in ready:
            pool.Add(f)
            pool.FindFileByName(f.name)
            added.add(f.name)
            pending.remove(f)
    seen = set()
    def visit(message):
        if message.full_name in seen:
            return
        seen.add(message.full_name)
        for fd in message.fields:
            if fd.message_type is not None:
                visit(fd.message_type)
    for method in pool.FindServiceByName("criu.gateway.v1.CriuService").methods:
        visit(method.input_type)
        visit(method.output_type)
    return {"services": services, "types": sorted(seen)}

with grpc.insecure_channel(sys.argv[1]) as channel:
    print(json.dumps({v: check(channel, v) for v in ("v1", "v1alpha")}))
`;
