// ExportCheckpoint, ImportCheckpoint and PushCheckpoint between two real gateways on unix
// sockets: whole copies, every way an import can go wrong (each leaving nothing behind), and
// the bound on what a gateway holds behind a slow reader.
import { readdirSync, readFileSync } from "node:fs";
import { connect as http2Connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ExportCheckpointResponse,
  type ImportCheckpointRequest,
  type SubscribeResponse,
  TransferCompression,
} from "../../gen/criu/gateway/v1/gateway.js";
import { MAX_IN_FLIGHT } from "../../src/grpc/boundedWriter.js";
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from "../../src/grpc/transferWindows.js";
import { failure, startTestGateway, type TestGateway } from "../support/gateway.js";
import { asImport, exportAll, importStream, plantFiles, pushAll } from "../support/transfer.js";
import { waitFor } from "../support/workload.js";

const NONE = TransferCompression.TRANSFER_COMPRESSION_NONE;
const ZSTD = TransferCompression.TRANSFER_COMPRESSION_ZSTD;
const MiB = 1024 * 1024;

let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  b = await startTestGateway();
  a = await startTestGateway({ pushTargets: [b.address] });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

afterEach(async () => {
  // Whatever failed, nothing half-imported stays: no staging directory on either side.
  for (const gw of [a, b]) {
    await waitFor(() => hidden(gw).length === 0, "staging directories to be removed");
  }
});

function hidden(gw: TestGateway): string[] {
  return readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."));
}

function published(gw: TestGateway): string[] {
  return readdirSync(gw.imagesRoot)
    .filter((n) => !n.startsWith("."))
    .sort();
}

/** An import of `messages` that must fail; the store must be as it was before. */
async function refusedImport(messages: ImportCheckpointRequest[]): Promise<ServiceError> {
  const before = published(b);
  const err = await failure(importStream(b.client, messages));
  await waitFor(() => hidden(b).length === 0, "staging directories to be removed");
  expect(published(b)).toEqual(before);
  return err;
}

let planted = 0;
/** A checkpoint on A of random files, and its export. */
async function exported(
  sizes: Record<string, number>,
  compression = NONE,
): Promise<{ id: string; files: Record<string, Buffer>; messages: ExportCheckpointResponse[] }> {
  const id = `src-${++planted}`;
  const files = plantFiles(a.imagesRoot, id, sizes);
  return { id, files, messages: await exportAll(a.client, { checkpointId: id, compression }) };
}

describe("export and import", () => {
  it("copies a checkpoint's files byte for byte under a new id, marked imported", async () => {
    const files = plantFiles(a.imagesRoot, "plain", {
      "pages-1.img": 3 * MiB + 17,
      "core-1.img": 100,
      "empty.img": 0,
    });
    for (const compression of [NONE, ZSTD]) {
      const messages = await exportAll(a.client, { checkpointId: "plain", compression });
      const manifest = messages[0]?.manifest;
      expect(manifest?.checkpoints.map((c) => c.files.map((f) => f.name))).toEqual([
        ["core-1.img", "empty.img", "pages-1.img"],
      ]);
      expect(manifest?.totalBytes).toBe(3 * MiB + 117);
      // 1 MiB chunks: pages-1.img in four, core-1.img in one, empty.img in none.
      expect(messages.length).toBe(1 + 1 + 4);
      const copy = `plain-copy-${compression}`;
      const res = await importStream(b.client, asImport(messages, copy));
      expect(res.checkpoint?.checkpointId).toBe(copy);
      expect(res.bytes).toBe(3 * MiB + 117);
      for (const [name, bytes] of Object.entries(files)) {
        expect(readFileSync(join(b.imagesRoot, copy, name)).equals(bytes)).toBe(true);
      }
      const meta = JSON.parse(readFileSync(join(b.imagesRoot, copy, "meta.json"), "utf8"));
      expect(meta.importedImages).toBe(true);
    }
  });

  it("compresses chunks that shrink and sends the others as they are", async () => {
    const id = "zeros";
    plantFiles(a.imagesRoot, id, { "random.img": MiB });
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(a.imagesRoot, id, "zero.img"), Buffer.alloc(2 * MiB));
    const messages = await exportAll(a.client, { checkpointId: id, compression: ZSTD });
    const chunks = messages.slice(1).map((m) => m.chunk);
    // random.img does not shrink; zero.img's chunks shrink to almost nothing.
    expect(chunks.map((c) => c?.zstd)).toEqual([false, true, true]);
    expect(chunks[1]?.data.length).toBeLessThan(1024);
    const res = await importStream(b.client, asImport(messages, "zeros-copy"));
    expect(res.bytes).toBe(3 * MiB);
    expect(res.wireBytes).toBeLessThan(MiB + 2048);
    expect(readFileSync(join(b.imagesRoot, "zeros-copy", "zero.img")).equals(Buffer.alloc(2 * MiB))).toBe(
      true,
    );
  });

  it("refuses an id that is taken with ALREADY_EXISTS and keeps the checkpoint there", async () => {
    const { messages } = await exported({ "a.img": 10 });
    plantFiles(b.imagesRoot, "taken", { "mine.img": 5 });
    const err = await refusedImport(asImport(messages, "taken"));
    expect(err.code).toBe(status.ALREADY_EXISTS);
    expect(err.details).toContain("taken");
    expect(readdirSync(join(b.imagesRoot, "taken")).sort()).toEqual(["meta.json", "mine.img"]);
  });

  it("refuses bytes that do not match the manifest's SHA-256 with DATA_LOSS", async () => {
    const { messages } = await exported({ "a.img": 2 * MiB });
    const tampered = asImport(messages, "bad-hash");
    const data = tampered[2]?.chunk?.data;
    if (!data) throw new Error("no second chunk");
    data[100] = (data[100] ?? 0) ^ 0xff;
    const err = await refusedImport(tampered);
    expect(err.code).toBe(status.DATA_LOSS);
    expect(err.details).toContain("a.img");
    expect(err.details).toContain("SHA-256");
  });

  it.each([
    ["a directory", "sub/pages.img"],
    ["a parent", "../escaped.img"],
    ["a leading dot", ".tmp-x"],
    ["the store's metadata", "meta.json"],
    ["an empty name", ""],
  ])("refuses a file name with %s with INVALID_ARGUMENT", async (_what, name) => {
    const { messages } = await exported({ "a.img": 10 });
    const request = asImport(messages, "escape");
    const file = request[0]?.header?.manifest?.checkpoints[0]?.files[0];
    if (!file) throw new Error("no file");
    file.name = name;
    const err = await refusedImport(request);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/not a plain file name/);
    expect(readdirSync(b.dir).filter((n) => n.includes("escaped"))).toEqual([]);
  });

  it("refuses a manifest that says a file is smaller than the bytes that come", async () => {
    const { messages } = await exported({ "a.img": MiB + 5 });
    const request = asImport(messages, "too-long");
    const m = request[0]?.header?.manifest;
    const file = m?.checkpoints[0]?.files[0];
    if (!m || !file) throw new Error("no file");
    file.sizeBytes = MiB;
    m.totalBytes = MiB;
    const err = await refusedImport(request);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("more bytes came than the 1048576 the manifest declares");
  });

  it("refuses with DATA_LOSS a stream that ends before a file is complete", async () => {
    const { messages } = await exported({ "a.img": 3 * MiB });
    const err = await refusedImport(asImport(messages, "cut").slice(0, 3));
    expect(err.code).toBe(status.DATA_LOSS);
    expect(err.details).toContain(`${2 * MiB} of its ${3 * MiB} bytes came`);
  });

  it("refuses a manifest whose total does not add up, and chunks out of order", async () => {
    const { messages } = await exported({ "a.img": 2 * MiB, "b.img": 10 });
    const wrongTotal = asImport(messages, "total");
    const m = wrongTotal[0]?.header?.manifest;
    if (!m) throw new Error("no manifest");
    m.totalBytes += 1;
    expect((await refusedImport(wrongTotal)).code).toBe(status.INVALID_ARGUMENT);
    // a.img's chunks are 1 and 2, b.img's is 3 (sorted by name): skip a.img's second chunk.
    const gap = asImport(messages, "gap");
    const [header, first, , third] = gap;
    if (!header || !first || !third) throw new Error("short export");
    const err = await refusedImport([header, first, third]);
    expect(err.code).toBe(status.DATA_LOSS);
    expect(err.details).toContain("moved on before the file was complete");
  });

  it("refuses a first message that is not a header", async () => {
    const { messages } = await exported({ "a.img": 10 });
    const err = await refusedImport(asImport(messages).slice(1));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("header");
  });

  it("removes what was staged when the client goes away mid-stream, and audits CANCELLED", async () => {
    const { messages } = await exported({ "a.img": 4 * MiB });
    const request = asImport(messages, "abandoned");
    await new Promise<void>((resolve) => {
      const call = b.client.importCheckpoint(() => resolve());
      call.write(request[0]);
      call.write(request[1], () => {
        // Staged and half-written: now the client disappears.
        void waitFor(() => hidden(b).length > 0, "the import to be staged").then(() => call.cancel());
      });
    });
    await waitFor(
      () => b.audit.some((r) => r.rpc === "ImportCheckpoint" && r.result === "CANCELLED"),
      "the audit line",
    );
    await waitFor(() => hidden(b).length === 0, "the staging directory to be removed");
    expect(published(b)).not.toContain("abandoned");
  });
});

describe("parent chains", () => {
  it("refuses a checkpoint whose parent is missing, and imports it with include_parents", async () => {
    plantFiles(a.imagesRoot, "base", { "pages-1.img": 1000 });
    plantFiles(a.imagesRoot, "child", { "pages-2.img": 2000 }, { parentId: "base" });
    const alone = await exportAll(a.client, { checkpointId: "child" });
    expect(alone[0]?.manifest?.checkpoints.map((c) => c.checkpoint?.checkpointId)).toEqual(["child"]);
    const err = await refusedImport(asImport(alone));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toContain("include_parents");

    const chain = await exportAll(a.client, { checkpointId: "child", includeParents: true });
    expect(chain[0]?.manifest?.checkpoints.map((c) => c.checkpoint?.checkpointId)).toEqual(["base", "child"]);
    const res = await importStream(b.client, asImport(chain, "child-here"));
    expect(res.parents.map((p) => p.checkpointId)).toEqual(["base"]);
    expect(res.checkpoint?.parentCheckpointId).toBe("base");
    // The parent is now here: the child alone imports on top of it.
    const again = await importStream(b.client, asImport(alone, "child-again"));
    expect(again.checkpoint?.parentCheckpointId).toBe("base");
  });

  it("removes the parents it published when a later checkpoint of the chain fails", async () => {
    plantFiles(a.imagesRoot, "p1", { "pages-1.img": 1000 });
    plantFiles(a.imagesRoot, "p2", { "pages-2.img": 2000 }, { parentId: "p1" });
    const chain = await exportAll(a.client, { checkpointId: "p2", includeParents: true });
    const request = asImport(chain, "p2-here");
    const last = request.at(-1)?.chunk?.data;
    if (!last) throw new Error("no chunk");
    last[0] = (last[0] ?? 0) ^ 1;
    const err = await refusedImport(request);
    expect(err.code).toBe(status.DATA_LOSS);
    expect(published(b)).not.toContain("p1");
  });
});

describe("push", () => {
  it("pushes a checkpoint to the target, with progress on the call and on Subscribe", async () => {
    const files = plantFiles(a.imagesRoot, "pushed", { "pages-1.img": 40 * MiB });
    const events: SubscribeResponse[] = [];
    const watch = a.client.subscribe({ kinds: [], pid: 0, checkpointId: "pushed" });
    watch.on("data", (e: SubscribeResponse) => events.push(e));
    watch.on("error", () => {});
    await waitFor(() => a.gateway.subscriberCount() === 1, "the subscription");
    const messages = await pushAll(a.client, {
      checkpointId: "pushed",
      target: b.address,
      targetCheckpointId: "arrived",
    });
    const progress = messages.filter((m) => m.progress).map((m) => m.progress?.bytesDone);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toBe(40 * MiB);
    expect(messages.at(-1)?.result?.checkpoint?.checkpointId).toBe("arrived");
    expect(
      readFileSync(join(b.imagesRoot, "arrived", "pages-1.img")).equals(files["pages-1.img"] as Buffer),
    ).toBe(true);
    await waitFor(() => events.some((e) => e.event?.finished), "the push's finished event");
    watch.cancel();
    expect(events.some((e) => (e.event?.transferProgress?.bytesDone ?? 0) > 0)).toBe(true);
    expect(events.find((e) => e.event?.finished)?.event?.finished?.code).toBe(0);
  });

  it("refuses a target the configuration does not list, and passes on the target's refusal", async () => {
    plantFiles(a.imagesRoot, "nowhere", { "a.img": 10 });
    const err = await failure(
      pushAll(a.client, { checkpointId: "nowhere", target: "unix:/tmp/elsewhere.sock" }),
    );
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toContain(b.address);
    plantFiles(b.imagesRoot, "occupied", { "x.img": 1 });
    const taken = await failure(
      pushAll(a.client, { checkpointId: "nowhere", target: b.address, targetCheckpointId: "occupied" }),
    );
    expect(taken.code).toBe(status.ALREADY_EXISTS);
    expect(taken.details).toContain(`target ${b.address}:`);
  });
});

describe("backpressure", () => {
  it("holds at most a few chunks for a reader that does not read, whatever the size", async () => {
    plantFiles(a.imagesRoot, "big", { "pages-1.img": 64 * MiB });
    const stats = a.gateway.transferStats();
    stats.maxPerStream = 0;
    const stream = a.client.exportCheckpoint({
      checkpointId: "big",
      includeParents: false,
      compression: NONE,
    });
    let received = 0;
    stream.on("data", (m: ExportCheckpointResponse) => {
      received += m.chunk?.data.length ?? 0;
    });
    stream.pause();
    // The gateway fills what it may and then waits for the reader: its chunks in flight reach
    // the bound and stay there while 60 MiB are still unread.
    await waitFor(() => stats.buffered === MAX_IN_FLIGHT, "the export to wait for its reader");
    expect(stats.maxPerStream).toBe(MAX_IN_FLIGHT);
    expect(received).toBeLessThan(16 * MiB);
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    stream.resume();
    await ended;
    expect(received).toBe(64 * MiB);
    expect(stats.maxPerStream).toBe(MAX_IN_FLIGHT);
    expect(stats.buffered).toBe(0);
  });

  it("lets a sender have several chunks unacknowledged: the gateway's HTTP/2 windows", async () => {
    // HTTP/2's default windows are 64 KiB: a 1 MiB chunk then waits for sixteen round trips.
    const path = b.address.slice("unix:".length);
    const session = http2Connect("http://localhost", { createConnection: () => netConnect(path) });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once("remoteSettings", () => resolve());
        session.once("error", reject);
      });
      // The connection's WINDOW_UPDATE is sent before the answer to a ping that follows it.
      await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
      expect(session.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
      expect(session.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
    } finally {
      session.destroy();
    }
  });
});
