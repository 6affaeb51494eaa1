// Checkpoint kinds and statistics kept in meta.json, and CRIU's logs read back with a size cap.
import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { DumpStatistics } from "../../gen/criu/gateway/v1/gateway.js";
import { GatewayError } from "../../src/domain/errors.js";
import { DUMP_LOG, ImageStore, META_FILE, RESTORE_LOG } from "../../src/domain/imageStore.js";

let root: string;

beforeEach(async () => {
  root = join(await fs.mkdtemp(join(tmpdir(), "criu-gateway-extras-")), "images");
});

afterEach(async () => {
  await fs.rm(join(root, ".."), { recursive: true, force: true });
});

const stats: DumpStatistics = {
  freezingTimeUs: 10,
  frozenTimeUs: 2000,
  memdumpTimeUs: 500,
  memwriteTimeUs: 400,
  pagesScanned: 300,
  pagesSkippedParent: 0,
  pagesWritten: 120,
  irmapResolveTimeUs: 0,
  pagesLazy: 0,
  pagePipes: 2,
  pagePipeBufs: 3,
  shpagesScanned: 0,
  shpagesSkippedParent: 0,
  shpagesWritten: 0,
};

async function publish(store: ImageStore, id: string, log: string, kind?: "dump" | "pre-dump" | "cpuinfo") {
  const staged = await store.stage(id, undefined);
  await fs.writeFile(join(staged.path, DUMP_LOG), log);
  return staged.publish({
    rootPid: 7,
    parentId: undefined,
    criuVersion: "4.1.1",
    leaveRunning: true,
    ...(kind === undefined ? {} : { kind }),
    dumpStatistics: stats,
  });
}

describe("checkpoint kinds and statistics", () => {
  test("a published checkpoint keeps its kind and statistics; without a kind it is a dump", async () => {
    const store = await ImageStore.open(root);
    const pre = await publish(store, "pre", "x\n", "pre-dump");
    expect(pre.kind).toBe("pre-dump");
    expect(pre.dumpStatistics).toEqual(stats);
    expect((await store.get("pre")).dumpStatistics).toEqual(stats);
    expect((await publish(store, "plain", "x\n")).kind).toBe("dump");
    expect((await publish(store, "cpu", "x\n", "cpuinfo")).kind).toBe("cpuinfo");
  });

  test("a meta.json from before kinds, or with an unknown kind, reads as a dump", async () => {
    const store = await ImageStore.open(root);
    for (const [id, extra] of [
      ["old", {}],
      ["odd", { kind: "rocket" }],
    ] as const) {
      await fs.mkdir(join(root, id), { mode: 0o700 });
      await fs.writeFile(
        join(root, id, META_FILE),
        JSON.stringify({ formatVersion: 1, createTime: new Date().toISOString(), rootPid: 1, ...extra }),
      );
      const info = await store.get(id);
      expect(info.kind, id).toBe("dump");
      expect(info.dumpStatistics, id).toBeUndefined();
    }
  });
});

describe("readLog", () => {
  test("returns a whole log that fits", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "a", "line one\nline two\n");
    expect(await store.readLog("a", DUMP_LOG, 1024)).toEqual({
      text: "line one\nline two\n",
      truncated: false,
      sizeBytes: 18,
    });
  });

  test("cuts a long log at its start, then at the next line break, keeping the end", async () => {
    const store = await ImageStore.open(root);
    const lines = Array.from({ length: 1000 }, (_, i) => `(00.${String(i).padStart(6, "0")}) step ${i}`);
    const text = `${lines.join("\n")}\nError: the end\n`;
    await publish(store, "long", text);
    const log = await store.readLog("long", DUMP_LOG, 4096);
    expect(log.truncated).toBe(true);
    expect(log.sizeBytes).toBe(Buffer.byteLength(text));
    expect(Buffer.byteLength(log.text)).toBeLessThanOrEqual(4096);
    expect(log.text.endsWith("Error: the end\n")).toBe(true);
    // Starts at a whole line.
    expect(log.text).toMatch(/^\(00\.\d{6}\) step \d+\n/);
    expect(text.endsWith(log.text)).toBe(true);
  });

  test("NOT_FOUND for a missing checkpoint or log; a symlinked log is not followed", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "a", "x\n");
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (err: unknown) => (err instanceof GatewayError ? err.code : String(err)),
      );
    expect(await codeOf(store.readLog("nope", DUMP_LOG, 100))).toBe("NOT_FOUND");
    expect(await codeOf(store.readLog("a", RESTORE_LOG, 100))).toBe("NOT_FOUND");
    await fs.writeFile(join(root, "..", "secret"), "secret\n");
    await fs.symlink(join(root, "..", "secret"), join(root, "a", RESTORE_LOG));
    expect(await codeOf(store.readLog("a", RESTORE_LOG, 100))).toBe("NOT_FOUND");
  });
});
