// A staged dump's point of no return (src/domain/stagedDump.ts) and start-up recovery
// (ImageStore.open): once secured for a dump that stops its processes, no path removes its images.
import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

// Every flush the store issues goes through fs.fsync on a descriptor it opened: counted here.
const fsyncCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  const fsync = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    fsyncCalls.count++;
    actual.fsync(fd, callback);
  };
  return { ...actual, fsync, default: { ...actual, fsync } };
});

import {
  type CheckpointMeta,
  ImageStore,
  META_FILE,
  type StagedDump,
  UNCONFIRMED_MARKER,
} from "../../src/domain/imageStore.js";

let base: string;
let root: string;

beforeEach(async () => {
  base = await fs.realpath(await fs.mkdtemp(join(tmpdir(), "criu-gateway-staged-")));
  root = join(base, "images");
});

afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

const meta = (over: Partial<CheckpointMeta> = {}): CheckpointMeta => ({
  rootPid: 4242,
  parentId: undefined,
  criuVersion: "4.2.1",
  leaveRunning: false,
  processes: [{ pid: 4242, uids: [0, 0, 0, 0], cgroup: "/" }],
  ...over,
});

/** A staged dump with CRIU's images in it, as CRIU leaves them at post-dump. */
async function stagedWithImages(store: ImageStore, id: string): Promise<StagedDump> {
  const staged = await store.stage(id, undefined);
  await fs.writeFile(join(staged.path, "inventory.img"), "inventory");
  await fs.writeFile(join(staged.path, "pages-1.img"), "x".repeat(4096));
  return staged;
}

const dotEntries = async () => (await fs.readdir(root)).filter((n) => n.startsWith("."));

describe("the point of no return", () => {
  test("before it, discard removes the staged dump", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "before");
    expect(await staged.discard()).toBeUndefined();
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("past it, discard keeps the dump as an unconfirmed checkpoint that lists and opens", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "past");
    await staged.secure(meta());
    expect(await staged.discard()).toEqual({ id: "past", listed: true });
    const info = await store.get("past");
    expect(info.state).toBe("unconfirmed");
    expect(info.kind).toBe("dump");
    expect(info.rootPid).toBe(4242);
    expect(info.processes?.map((p) => p.pid)).toEqual([4242]);
    expect((await store.list()).map((c) => c.id)).toEqual(["past"]);
    const opened = await store.openCheckpoint("past");
    await opened.close();
    expect(await dotEntries()).toEqual([]);
    // Only DeleteCheckpoint removes it.
    await store.delete("past");
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("past it, a publish completes the checkpoint and takes the mark away", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "done");
    await staged.secure(meta());
    const stats = { pagesWritten: 1 } as CheckpointMeta["dumpStatistics"];
    const info = await staged.publish(meta({ dumpStatistics: stats }));
    expect(info.state).toBe("complete");
    expect(info.dumpStatistics).toEqual(stats);
    expect(await fs.readdir(join(root, "done"))).not.toContain(UNCONFIRMED_MARKER);
  });

  test("CRIU's failure answer (it rolled back) lets discard remove it again", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "rolled-back");
    await staged.secure(meta());
    staged.rolledBack();
    expect(await staged.discard()).toBeUndefined();
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("a dump with leave_running has none: its processes run on, so discard removes it", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "running");
    await staged.secure(meta({ leaveRunning: true }));
    expect(await fs.readdir(staged.path)).toContain(META_FILE);
    expect(await staged.discard()).toBeUndefined();
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("past it, a failed publish keeps the images staged when the id is taken", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "taken");
    await staged.secure(meta());
    // Something else took the id meanwhile: nothing may be replaced, and nothing removed.
    await fs.mkdir(join(root, "taken"));
    await expect(staged.publish(meta())).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    expect(await staged.discard()).toEqual({ id: "taken", listed: false });
    expect(await dotEntries()).toHaveLength(1);
    const reopened = await ImageStore.open(root);
    expect(reopened.recovered).toEqual([
      { id: "taken", outcome: "left", dir: join(root, staged.path.split("/").at(-1)!) },
    ]);
    expect(await dotEntries()).toHaveLength(1);
  });
});

describe("the point of no return with durability NONE", () => {
  test("nothing is flushed, yet the records are written: a gateway stopped there is recovered", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "unflushed");
    await staged.secure(meta({ durability: "none" }));
    expect(await fs.readdir(staged.path)).toEqual(
      expect.arrayContaining([META_FILE, UNCONFIRMED_MARKER, "inventory.img", "pages-1.img"]),
    );
    // The gateway stops here (no publish, no discard); the next start finds the dump.
    const reopened = await ImageStore.open(root);
    expect(reopened.recovered).toEqual([{ id: "unflushed", outcome: "kept", dir: join(root, "unflushed") }]);
    const info = await reopened.get("unflushed");
    expect(info).toMatchObject({ state: "unconfirmed", durability: "none", rootPid: 4242 });
  });

  test("a publish after it describes what it wrote, unmarked and recorded as NONE", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "quick");
    await staged.secure(meta({ durability: "none" }));
    const info = await staged.publish(meta({ durability: "none" }));
    expect(info).toMatchObject({ state: "complete", durability: "none" });
    // What it said is what a later read finds.
    expect(await store.get("quick")).toEqual({ ...info, createTime: expect.any(Date) });
    expect(await fs.readdir(join(root, "quick"))).not.toContain(UNCONFIRMED_MARKER);
  });
});

describe("flushing with durability FSYNC", () => {
  test("a dump that stops its processes is flushed at post-dump, before CRIU may stop them", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "stopping");
    fsyncCalls.count = 0;
    await staged.secure(meta({ durability: "fsync" }));
    // inventory.img, pages-1.img, meta.json, the marker, then the directory.
    expect(fsyncCalls.count).toBe(5);
    await staged.publish(meta({ durability: "fsync" }));
    expect((await store.get("stopping")).state).toBe("complete");
  });

  test("a dump that leaves its processes running is flushed once, when published", async () => {
    const store = await ImageStore.open(root);
    const staged = await stagedWithImages(store, "running");
    fsyncCalls.count = 0;
    await staged.secure(meta({ durability: "fsync", leaveRunning: true }));
    // Its processes run on whatever happens next: nothing waits for the disk at post-dump.
    expect(fsyncCalls.count).toBe(0);
    await fs.writeFile(join(staged.path, "stats-dump"), "stats");
    await staged.publish(meta({ durability: "fsync", leaveRunning: true }));
    // Every file (inventory.img, pages-1.img, meta.json, stats-dump), the directory, the root.
    expect(fsyncCalls.count).toBe(6);
    const dir = join(root, "running");
    for (const name of await fs.readdir(dir)) {
      expect([name, (await fs.stat(join(dir, name))).mode & 0o777]).toEqual([name, 0o600]);
    }
    expect((await store.get("running")).durability).toBe("fsync");
  });
});

describe("start-up recovery", () => {
  test("publishes what passed the point of no return as unconfirmed, removes the rest, scratch silently", async () => {
    const store = await ImageStore.open(root);
    // A gateway that stopped: one dump secured, one not, one secured with leave_running, scratch.
    const secured = await stagedWithImages(store, "secured");
    await secured.secure(meta());
    const unsecured = await stagedWithImages(store, "unsecured");
    const running = await stagedWithImages(store, "running");
    await running.secure(meta({ leaveRunning: true }));
    const scratch = await store.scratch("check");
    // A marker without metadata: the gateway stopped inside secure(), before answering CRIU.
    const torn = await stagedWithImages(store, "torn");
    await fs.writeFile(join(torn.path, UNCONFIRMED_MARKER), "");
    for (const d of [secured, unsecured, running, scratch, torn])
      expect((await fs.stat(d.path)).isDirectory()).toBe(true);

    const restarted = await ImageStore.open(root);
    const outcomes = Object.fromEntries(restarted.recovered.map((r) => [r.id, r.outcome]));
    expect(outcomes).toEqual({
      secured: "kept",
      unsecured: "removed",
      running: "removed",
      torn: "removed",
    });
    expect(await fs.readdir(root)).toEqual(["secured"]);
    const info = await restarted.get("secured");
    expect(info.state).toBe("unconfirmed");
    expect(info.processes?.map((p) => p.pid)).toEqual([4242]);
  });
});

describe("privacy of the images", () => {
  for (const durability of ["fsync", "none"] as const) {
    test(`with ${durability}, every file is private once published, those CRIU wrote after post-dump too`, async () => {
      const store = await ImageStore.open(root);
      const staged = await stagedWithImages(store, `private-${durability}`);
      // CRIU writes its images 0644.
      await fs.chmod(join(staged.path, "inventory.img"), 0o644);
      await staged.secure(meta({ leaveRunning: true, durability }));
      // After post-dump CRIU writes its statistics and appends to its log; a file settled at
      // post-dump that changed since is settled again.
      await fs.writeFile(join(staged.path, "stats-dump"), "stats", { mode: 0o644 });
      await fs.appendFile(join(staged.path, "pages-1.img"), "more");
      await fs.chmod(join(staged.path, "pages-1.img"), 0o644);
      await staged.publish(meta({ leaveRunning: true, durability }));
      const dir = join(root, `private-${durability}`);
      for (const name of await fs.readdir(dir)) {
        expect([name, (await fs.stat(join(dir, name))).mode & 0o777]).toEqual([name, 0o600]);
      }
    });
  }
});
