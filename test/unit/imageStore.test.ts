// The image store on a real filesystem: ids, staging and publishing, parent links, deletion rules,
// start-up cleanup and what is (not) a checkpoint. Each test gets its own root under os.tmpdir().
import { promises as fs, fstatSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

// Files and directories are flushed with fsync(2) on the descriptors the store opened (fs.fsync);
// the flush counts below also watch FileHandle.sync, should a flush ever go that way.
const fsyncCalls = vi.hoisted(() => ({ count: 0 }));
vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  const fsync = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    fsyncCalls.count++;
    actual.fsync(fd, callback);
  };
  return { ...actual, fsync, default: { ...actual, fsync } };
});

import { GatewayError } from "../../src/domain/errors.js";
import {
  type CheckpointInfo,
  type CheckpointMeta,
  ImageStore,
  META_FILE,
} from "../../src/domain/imageStore.js";

let base: string;
let root: string;

beforeEach(async () => {
  // realpath: /tmp may itself be a symlink, and the tests compare resolved paths.
  base = await fs.realpath(await fs.mkdtemp(join(tmpdir(), "criu-gateway-store-")));
  root = join(base, "images");
});

afterEach(async () => {
  vi.useRealTimers();
  await fs.rm(base, { recursive: true, force: true });
});

const meta = (over: Partial<CheckpointMeta> = {}): CheckpointMeta => ({
  rootPid: 4242,
  parentId: undefined,
  criuVersion: "4.1",
  leaveRunning: true,
  ...over,
});

/** Writes files the way CRIU would into an images directory; returns their total size. */
async function writeImages(dir: string): Promise<number> {
  const files: Record<string, string> = {
    "inventory.img": "inventory",
    "pstree.img": "p".repeat(100),
    "pages-1.img": "x".repeat(4096),
    "dump.log": "(00.000001) Dumping finished successfully\n",
  };
  let total = 0;
  for (const [name, content] of Object.entries(files)) {
    // Deliberately too open: publishing must make them private.
    await fs.writeFile(join(dir, name), content, { mode: 0o644 });
    total += Buffer.byteLength(content);
  }
  return total;
}

async function publish(store: ImageStore, id: string, parentId?: string, images = true) {
  const staged = await store.stage(id, parentId);
  if (images) await writeImages(staged.path);
  return staged.publish(meta({ parentId }));
}

/** This process's descriptors open on `path` or below it (deleted ones included), by /proc. */
function fdsOpenOn(path: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    if (target === path || target.startsWith(`${path}/`) || target === `${path} (deleted)`) out.push(target);
  }
  return out;
}

async function expectGatewayError(promise: Promise<unknown>, code: string, message?: RegExp | string) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe(code);
  if (message !== undefined) expect((err as GatewayError).message).toMatch(message);
  return err as GatewayError;
}

function expectIdRejected(fn: () => void, field: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(GatewayError);
  expect((thrown as GatewayError).code).toBe("INVALID_ARGUMENT");
  expect((thrown as GatewayError).message).toContain(field);
}

describe("checkpoint ids", () => {
  test.each(["a", "0", "web-1", "web_1.2024-01-01", "A.b-c_d", "x".repeat(128)])("accepts %j", (id) => {
    expect(() => ImageStore.validateId(id)).not.toThrow();
  });

  test.each([
    ["empty", ""],
    ["a relative path", "../x"],
    ["an absolute path", "/abs"],
    ["a hidden name", ".hidden"],
    ["a dot", "."],
    ["a dot-dot", ".."],
    ["a slash", "a/b"],
    ["a space", "a b"],
    ["a leading dash", "-rf"],
    ["129 characters", "x".repeat(129)],
    ["a NUL byte", "x\u0000"],
    ["a trailing newline", "a\n"],
    ["unicode", "检查点"],
    ["accented letters", "café"],
  ])("rejects %s with INVALID_ARGUMENT naming the field", (_what, id) => {
    expectIdRejected(() => ImageStore.validateId(id), "checkpoint_id");
    expectIdRejected(() => ImageStore.validateId(id, "parent_checkpoint_id"), "parent_checkpoint_id");
  });

  test("every entry point validates: nothing is created for a bad id", async () => {
    const store = await ImageStore.open(root);
    await expectGatewayError(store.stage("../escape", undefined), "INVALID_ARGUMENT", /checkpoint_id/);
    await expectGatewayError(store.stage("ok", "../escape"), "INVALID_ARGUMENT", /parent_checkpoint_id/);
    await expectGatewayError(store.get("../images"), "INVALID_ARGUMENT", /checkpoint_id/);
    await expectGatewayError(store.delete("/etc"), "INVALID_ARGUMENT", /checkpoint_id/);
    await expectGatewayError(store.openCheckpoint(".hidden"), "INVALID_ARGUMENT", /checkpoint_id/);
    expect(await fs.readdir(root)).toEqual([]);
  });
});

describe("stage and publish", () => {
  test("a published checkpoint is a private directory with meta.json, described by get and list", async () => {
    const store = await ImageStore.open(root);
    const staged = await store.stage("web-1", undefined);
    expect(staged.parentImg).toBeUndefined();
    expect(dirname(staged.path)).toBe(root);
    expect(fstatSync(staged.fd).isDirectory()).toBe(true);
    expect(fdsOpenOn(staged.path)).toEqual([staged.path]);
    const imagesSize = await writeImages(staged.path);

    const before = Date.now();
    const info = await staged.publish(meta({ rootPid: 777, criuVersion: "4.1.1", leaveRunning: false }));
    const after = Date.now();

    const dir = join(root, "web-1");
    const metaSize = (await fs.stat(join(dir, META_FILE))).size;
    expect(metaSize).toBeGreaterThan(0);
    expect(info).toEqual({
      id: "web-1",
      createTime: expect.any(Date),
      sizeBytes: imagesSize + metaSize,
      rootPid: 777,
      parentId: undefined,
      criuVersion: "4.1.1",
      leaveRunning: false,
      kind: "dump",
      dumpStatistics: undefined,
      importedImages: false,
      state: "complete",
      durability: "fsync",
    });
    expect(info.createTime.getTime()).toBeGreaterThanOrEqual(before);
    expect(info.createTime.getTime()).toBeLessThanOrEqual(after);
    expect(await store.get("web-1")).toEqual(info);
    expect(await store.list()).toEqual([info]);

    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    const names = await fs.readdir(dir);
    expect(names.sort()).toEqual(
      ["dump.log", "inventory.img", META_FILE, "pages-1.img", "pstree.img"].sort(),
    );
    for (const name of names) {
      expect({ name, mode: (await fs.stat(join(dir, name))).mode & 0o777 }).toEqual({ name, mode: 0o600 });
    }
    // The staging directory was renamed, not copied: nothing temporary is left.
    expect(await fs.readdir(root)).toEqual(["web-1"]);
    // publish closed the descriptor it handed to CRIU.
    expect(fdsOpenOn(dir)).toEqual([]);
  });

  test.each([
    ["fsync", 5 + 2],
    ["none", 0],
  ] as const)(
    "with durability %s a dump is published whole, at once, and says how (%i flushes)",
    async (durability, flushes) => {
      const store = await ImageStore.open(root);
      const staged = await store.stage("durable", undefined);
      await writeImages(staged.path);
      // Every flush the store issues, by fs.fsync or FileHandle.sync.
      fsyncCalls.count = 0;
      const probe = await fs.open(root, "r");
      const handleProto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
      await probe.close();
      const sync = vi.spyOn(handleProto, "sync");
      try {
        await expectGatewayError(store.get("durable"), "NOT_FOUND");
        const info = await staged.publish(meta({ durability }));
        expect(sync.mock.calls.length + fsyncCalls.count).toBe(flushes);
        expect(info.durability).toBe(durability);
      } finally {
        sync.mockRestore();
      }
      expect(await fs.readdir(root)).toEqual(["durable"]);
      const dir = join(root, "durable");
      expect((await fs.readdir(dir)).sort()).toEqual(
        ["dump.log", "inventory.img", META_FILE, "pages-1.img", "pstree.img"].sort(),
      );
      for (const name of await fs.readdir(dir)) {
        expect({ name, mode: (await fs.stat(join(dir, name))).mode & 0o777 }).toEqual({ name, mode: 0o600 });
      }
      expect((await store.get("durable")).durability).toBe(durability);
      expect(JSON.parse(await fs.readFile(join(dir, META_FILE), "utf8")).durability).toBe(durability);
    },
  );

  test.each(["fsync", "none"] as const)(
    "with durability %s a publish that fails leaves nothing",
    async (durability) => {
      const store = await ImageStore.open(root);
      const staged = await store.stage("raced", undefined);
      await writeImages(staged.path);
      // Someone else's directory appears under the id while the dump runs: it is not replaced.
      await fs.mkdir(join(root, "raced"));
      await expectGatewayError(staged.publish(meta({ durability })), "ALREADY_EXISTS", /raced/);
      expect(await fs.readdir(root)).toEqual(["raced"]);
      expect(await fs.readdir(join(root, "raced"))).toEqual([]);
      expect(fdsOpenOn(staged.path)).toEqual([]);
    },
  );

  test("checkpoints written before durability was recorded were flushed, and say so", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "old");
    const file = join(root, "old", META_FILE);
    const { durability: _, ...older } = JSON.parse(await fs.readFile(file, "utf8"));
    await fs.writeFile(file, JSON.stringify(older));
    expect((await store.get("old")).durability).toBe("fsync");
  });

  test("a staged dump is invisible until published, and holds its id", async () => {
    const store = await ImageStore.open(root);
    const staged = await store.stage("job", undefined);
    await writeImages(staged.path);
    await expectGatewayError(store.get("job"), "NOT_FOUND", /job/);
    expect(await store.list()).toEqual([]);
    await expectGatewayError(store.openCheckpoint("job"), "NOT_FOUND");
    await expectGatewayError(store.stage("job", undefined), "ALREADY_EXISTS", /job/);
    // Only the first staging directory exists.
    expect(await fs.readdir(root)).toEqual([expect.stringMatching(/^\.tmp-job-/)]);

    await staged.discard();
    expect(await fs.readdir(root)).toEqual([]);
    expect(fdsOpenOn(staged.path)).toEqual([]);
    await staged.discard(); // idempotent

    const again = await store.stage("job", undefined);
    await again.discard();
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("a published id cannot be staged again", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "once");
    await expectGatewayError(store.stage("once", undefined), "ALREADY_EXISTS", /once/);
    expect(await fs.readdir(root)).toEqual(["once"]);
  });

  test("publish refuses a second call and discard after publish is a no-op", async () => {
    const store = await ImageStore.open(root);
    const staged = await store.stage("one", undefined);
    await staged.publish(meta());
    await expect(staged.publish(meta())).rejects.toThrow();
    await staged.discard();
    expect((await store.get("one")).id).toBe("one");
  });

  test("a parent must exist", async () => {
    const store = await ImageStore.open(root);
    await expectGatewayError(store.stage("child", "missing"), "NOT_FOUND", /missing/);
    expect(await fs.readdir(root)).toEqual([]);
    // The refused stage left the id free.
    await (await store.stage("child", undefined)).discard();
  });

  test("a refused stage does not keep holding the parent it named", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "base");
    await publish(store, "taken");
    await expectGatewayError(store.stage("taken", "base"), "ALREADY_EXISTS", /taken/);
    await expectGatewayError(store.stage("bad id", "base"), "INVALID_ARGUMENT");
    await store.delete("base");
    expect(await fs.readdir(root)).toEqual(["taken"]);
  });

  test("an incremental dump links to its parent by a relative path valid before and after publish", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "base");
    const parentDir = join(root, "base");

    const staged = await store.stage("incr", "base");
    expect(staged.parentImg).toBe("../base");
    // Same depth as the parent, so "../base" means the same thing from both places.
    expect(dirname(staged.path)).toBe(dirname(parentDir));
    expect(resolve(staged.path, staged.parentImg!)).toBe(parentDir);
    expect(await fs.realpath(join(staged.path, staged.parentImg!))).toBe(parentDir);

    await writeImages(staged.path);
    const info = await staged.publish(meta({ parentId: "base" }));
    expect(info.parentId).toBe("base");
    const finalDir = join(root, "incr");
    expect(resolve(finalDir, staged.parentImg!)).toBe(parentDir);
    expect(await fs.realpath(join(finalDir, staged.parentImg!))).toBe(parentDir);
    await expect(fs.stat(join(finalDir, staged.parentImg!, META_FILE))).resolves.toBeTruthy();
    expect((await store.get("incr")).parentId).toBe("base");
  });
});

describe("delete", () => {
  test("an unknown id is NOT_FOUND", async () => {
    const store = await ImageStore.open(root);
    await expectGatewayError(store.delete("nope"), "NOT_FOUND", /nope/);
  });

  test("removes the checkpoint completely", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "gone");
    await store.delete("gone");
    expect(await fs.readdir(root)).toEqual([]);
    await expectGatewayError(store.get("gone"), "NOT_FOUND");
    expect(await store.list()).toEqual([]);
    // The id is free again.
    await publish(store, "gone");
    expect((await store.list()).map((c) => c.id)).toEqual(["gone"]);
  });

  test("refuses a parent while a child references it, naming the child", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "base");
    await publish(store, "incr-1", "base");
    const err = await expectGatewayError(store.delete("base"), "FAILED_PRECONDITION");
    expect(err.message).toContain("incr-1");
    expect((await store.get("base")).id).toBe("base");

    await store.delete("incr-1");
    await store.delete("base");
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("names only the children the caller may see, and counts the others", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "ci-base");
    await publish(store, "ci-kid", "ci-base");
    await publish(store, "prod-kid", "ci-base");
    await publish(store, "prod-other", "ci-base");
    const ciSees = (id: string) => id.startsWith("ci-");
    const some = await expectGatewayError(store.delete("ci-base", ciSees), "FAILED_PRECONDITION");
    expect(some.message).toBe(
      "checkpoint ci-base is the parent of ci-kid and of 2 checkpoints you may not read; they must be deleted first",
    );
    await store.delete("ci-kid");
    const none = await expectGatewayError(store.delete("ci-base", ciSees), "FAILED_PRECONDITION");
    expect(none.message).toBe(
      "checkpoint ci-base is the parent of 2 checkpoints you may not read; they must be deleted first",
    );
    expect(none.message).not.toMatch(/prod-/);
    await store.delete("prod-other");
    await expectGatewayError(
      store.delete("ci-base", ciSees),
      "FAILED_PRECONDITION",
      /^checkpoint ci-base is the parent of 1 checkpoint you may not read; it must be deleted first$/,
    );
  });

  test("refuses a checkpoint held open by a restore until it is closed", async () => {
    const store = await ImageStore.open(root);
    const info = await publish(store, "held");
    const opened = await store.openCheckpoint("held");
    expect(opened.path).toBe(join(root, "held"));
    expect(opened.info).toEqual(info);
    expect(fstatSync(opened.fd).isDirectory()).toBe(true);

    await expectGatewayError(store.delete("held"), "FAILED_PRECONDITION", /held/);
    expect((await store.get("held")).id).toBe("held");

    await opened.close();
    await opened.close(); // idempotent: must not release twice
    expect(fdsOpenOn(opened.path)).toEqual([]);
    await store.delete("held");
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("two opens need two closes", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "twice");
    const a = await store.openCheckpoint("twice");
    const b = await store.openCheckpoint("twice");
    await a.close();
    await a.close();
    await expectGatewayError(store.delete("twice"), "FAILED_PRECONDITION");
    await b.close();
    await store.delete("twice");
  });

  test("refuses a parent while an incremental dump of it is staged", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "base");
    const staged = await store.stage("incr", "base");
    await expectGatewayError(store.delete("base"), "FAILED_PRECONDITION", /base/);
    await staged.discard();
    await store.delete("base");
    expect(await fs.readdir(root)).toEqual([]);
  });
});

describe("lineage", () => {
  test("a checkpoint and its ancestors, itself first; nothing for an unknown id", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "a");
    await publish(store, "b", "a");
    await publish(store, "c", "b");
    expect((await store.lineage("c")).map((c) => c.id)).toEqual(["c", "b", "a"]);
    expect((await store.lineage("a")).map((c) => c.id)).toEqual(["a"]);
    expect(await store.lineage("nope")).toEqual([]);
  });

  test("ends at a missing ancestor, an id that is not one, or a loop", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "a");
    await publish(store, "b", "a");
    const setParent = async (id: string, parentId: string) => {
      const path = join(root, id, META_FILE);
      const doc = JSON.parse(await fs.readFile(path, "utf8"));
      await fs.writeFile(path, JSON.stringify({ ...doc, parentId }));
    };
    await setParent("a", "b");
    expect((await store.lineage("b")).map((c) => c.id)).toEqual(["b", "a"]);
    await setParent("a", "../../etc");
    expect((await store.lineage("b")).map((c) => c.id)).toEqual(["b", "a"]);
    await setParent("a", "gone");
    expect((await store.lineage("b")).map((c) => c.id)).toEqual(["b", "a"]);
  });
});

describe("open", () => {
  test("creates a private root", async () => {
    await ImageStore.open(root);
    expect((await fs.stat(root)).mode & 0o777).toBe(0o700);
  });

  test("removes interrupted dumps and deletes but keeps checkpoints", async () => {
    const first = await ImageStore.open(root);
    const kept = await publish(first, "kept");
    for (const stale of [".tmp-x-0123456789ab", ".del-y-0123456789ab"]) {
      await fs.mkdir(join(root, stale));
      await writeImages(join(root, stale));
    }
    await fs.writeFile(join(root, ".tmp-file"), "stale");

    const store = await ImageStore.open(root);
    expect(await fs.readdir(root)).toEqual(["kept"]);
    expect(await store.list()).toEqual([kept]);
  });

  test("refuses a root that is not a directory", async () => {
    await fs.mkdir(base, { recursive: true });
    const file = join(base, "file");
    await fs.writeFile(file, "");
    await expect(ImageStore.open(file)).rejects.toThrow();
  });
});

describe("what is a checkpoint", () => {
  test("a symlink named like an id is not followed", async () => {
    const store = await ImageStore.open(root);
    const outside = join(base, "outside");
    await fs.mkdir(outside);
    await writeImages(outside);
    await fs.writeFile(
      join(outside, META_FILE),
      JSON.stringify({
        formatVersion: 1,
        createTime: new Date().toISOString(),
        rootPid: 1,
        criuVersion: "x",
      }),
    );
    await fs.symlink(outside, join(root, "planted"));

    expect(await store.list()).toEqual([]);
    await expectGatewayError(store.get("planted"), "NOT_FOUND");
    await expectGatewayError(store.openCheckpoint("planted"), "NOT_FOUND");
    await expectGatewayError(store.delete("planted"), "NOT_FOUND");
    // The link and its target are untouched.
    expect((await fs.lstat(join(root, "planted"))).isSymbolicLink()).toBe(true);
    expect((await fs.readdir(outside)).length).toBeGreaterThan(0);
  });

  test("a regular file named like an id is not listed", async () => {
    const store = await ImageStore.open(root);
    await fs.writeFile(join(root, "plain-file"), "not a checkpoint");
    expect(await store.list()).toEqual([]);
    await expectGatewayError(store.get("plain-file"), "NOT_FOUND");
  });

  test("internal entries are never listed", async () => {
    const store = await ImageStore.open(root);
    const staged = await store.stage("in-progress", undefined);
    const scratch = await store.scratch("check");
    expect(await store.list()).toEqual([]);
    await staged.discard();
    await scratch.discard();
  });
});

describe("scratch", () => {
  test("is a private .tmp- directory that discard removes", async () => {
    const store = await ImageStore.open(root);
    const scratch = await store.scratch("check");
    expect(dirname(scratch.path)).toBe(root);
    expect(scratch.path.slice(root.length + 1)).toMatch(/^\.tmp-check-/);
    const stat = await fs.stat(scratch.path);
    expect(stat.isDirectory()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o700);
    expect(fstatSync(scratch.fd).ino).toBe(stat.ino);
    await fs.writeFile(join(scratch.path, "check.log"), "log");

    await scratch.discard();
    expect(await fs.readdir(root)).toEqual([]);
    expect(fdsOpenOn(scratch.path)).toEqual([]);
    await scratch.discard();
  });
});

describe("list", () => {
  test("is sorted oldest first, by id when created at the same time", async () => {
    const store = await ImageStore.open(root);
    // Only Date is faked: the filesystem work stays real.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2024-01-01T00:00:03Z"));
    await publish(store, "aa-newest");
    vi.setSystemTime(new Date("2024-01-01T00:00:01Z"));
    await publish(store, "zz-oldest");
    vi.setSystemTime(new Date("2024-01-01T00:00:02Z"));
    await publish(store, "mm-tie");
    await publish(store, "bb-tie");
    vi.useRealTimers();

    const listed = await store.list();
    expect(listed.map((c) => c.id)).toEqual(["zz-oldest", "bb-tie", "mm-tie", "aa-newest"]);
    expect(listed[0]!.createTime.toISOString()).toBe("2024-01-01T00:00:01.000Z");
  });
});

describe("concurrent calls", () => {
  /** Many checkpoints make delete's scan for children slow, so a call started meanwhile overlaps it. */
  async function crowd(store: ImageStore): Promise<void> {
    for (let i = 0; i < 40; i++) await publish(store, `crowd-${i}`, undefined, false);
  }

  test("two stages of one id at once: exactly one wins", async () => {
    const store = await ImageStore.open(root);
    const results = await Promise.allSettled([store.stage("dup", undefined), store.stage("dup", undefined)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]!.reason as GatewayError).code).toBe("ALREADY_EXISTS");
    await won[0]!.value.discard();
    expect(await fs.readdir(root)).toEqual([]);
  });

  /** Lets `turns` turns of the event loop pass, so the next call starts at a different point of a running one. */
  async function turns(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await new Promise<void>((done) => setImmediate(done));
  }

  // Each race is started at many offsets: whichever point of the delete the other call lands on,
  // exactly one of the two may win.
  const OFFSETS = 40;

  test("a parent deleted while an incremental dump of it starts: one of the two is refused", async () => {
    const store = await ImageStore.open(root);
    await crowd(store);
    for (let offset = 0; offset < OFFSETS; offset++) {
      await publish(store, "base", undefined, false);
      const deleting = store.delete("base");
      await turns(offset);
      const staging = store.stage("incr", "base");
      const [deleted, staged] = await Promise.allSettled([deleting, staging]);
      if (staged.status === "fulfilled") {
        expect({ offset, deleted: deleted.status }).toEqual({ offset, deleted: "rejected" });
        expect((deleted as PromiseRejectedResult).reason).toMatchObject({ code: "FAILED_PRECONDITION" });
        expect((await store.get("base")).id).toBe("base");
        await staged.value.discard();
        await store.delete("base");
      } else {
        expect({ offset, deleted: deleted.status }).toEqual({ offset, deleted: "fulfilled" });
        expect(staged.reason).toMatchObject({ code: "NOT_FOUND" });
      }
    }
  });

  test("a checkpoint deleted while a restore opens it: one of the two is refused", async () => {
    const store = await ImageStore.open(root);
    await crowd(store);
    for (let offset = 0; offset < OFFSETS; offset++) {
      await publish(store, "target", undefined, false);
      const deleting = store.delete("target");
      await turns(offset);
      const opening = store.openCheckpoint("target");
      const [deleted, opened] = await Promise.allSettled([deleting, opening]);
      if (opened.status === "fulfilled") {
        expect({ offset, deleted: deleted.status }).toEqual({ offset, deleted: "rejected" });
        expect((deleted as PromiseRejectedResult).reason).toMatchObject({ code: "FAILED_PRECONDITION" });
        expect(await fs.readdir(opened.value.path)).toContain(META_FILE);
        await opened.value.close();
        await store.delete("target");
      } else {
        expect({ offset, deleted: deleted.status }).toEqual({ offset, deleted: "fulfilled" });
        expect(opened.reason).toMatchObject({ code: "NOT_FOUND" });
      }
    }
  });

  test("get and list during a delete see the checkpoint whole or not at all", async () => {
    const store = await ImageStore.open(root);
    await crowd(store);
    for (let offset = 0; offset < OFFSETS; offset++) {
      const info = await publish(store, "going");
      const deleting = store.delete("going");
      await turns(offset);
      const [got, listed] = await Promise.allSettled([store.get("going"), store.list()]);
      await deleting;
      if (got.status === "fulfilled") expect(got.value).toEqual(info);
      else expect(got.reason).toMatchObject({ code: "NOT_FOUND" });
      expect(listed.status).toBe("fulfilled");
      const seen = (listed as PromiseFulfilledResult<CheckpointInfo[]>).value;
      expect(seen.filter((c) => c.id === "going").every((c) => c.sizeBytes === info.sizeBytes)).toBe(true);
      expect(seen.filter((c) => c.id.startsWith("crowd-"))).toHaveLength(40);
    }
  });

  test("two deletes of one checkpoint: one succeeds, the other is NOT_FOUND", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "twice");
    const results = await Promise.allSettled([store.delete("twice"), store.delete("twice")]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const lost = results.find((r) => r.status === "rejected")!;
    expect(lost.reason).toMatchObject({ code: "NOT_FOUND" });
    expect(await fs.readdir(root)).toEqual([]);
  });
});

describe("export and import of images", () => {
  async function publish(store: ImageStore, id: string, kind: CheckpointMeta["kind"]): Promise<void> {
    const staged = await store.stage(id, undefined);
    if (kind === "dump") await writeImages(staged.path);
    else await fs.writeFile(join(staged.path, "pages-65537.img"), "p".repeat(4096));
    await staged.publish(meta({ kind, rootPid: 0 }));
  }

  test("export gives the image files only, sorted; logs and meta.json stay behind", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "src", "dump");
    const files = await store.exportImages("src", 1 << 20);
    expect(files.map((f) => f.name)).toEqual(["inventory.img", "pages-1.img", "pstree.img"]);
    expect(files[0]?.data.toString()).toBe("inventory");
    await expect(store.exportImages("src", 100)).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
  });

  test("import into a page server's checkpoint; with inventory.img it becomes a dump", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "x", "pages");
    const partial = await store.importImages("x", [{ name: "pstree.img", data: Buffer.from("p") }], 0);
    expect(partial.kind).toBe("pages");
    const done = await store.importImages("x", [{ name: "inventory.img", data: Buffer.from("i") }], 321);
    expect(done).toMatchObject({ kind: "dump", rootPid: 321, processes: undefined });
    expect((await fs.stat(join(root, "x", "inventory.img"))).mode & 0o777).toBe(0o600);
  });

  test("an import records the durability it was given; files are added whole either way", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "x", "pages");
    const partial = await store.importImages(
      "x",
      [{ name: "pstree.img", data: Buffer.from("p") }],
      0,
      "none",
    );
    expect(partial.durability).toBe("none");
    const done = await store.importImages("x", [{ name: "inventory.img", data: Buffer.from("i") }], 0);
    expect(done.durability).toBe("fsync");
    expect((await fs.readdir(join(root, "x"))).filter((n) => n.startsWith("."))).toEqual([]);
  });

  test("an import marks the checkpoint, and the mark passes to every descendant", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "own", "dump");
    expect((await store.get("own")).importedImages).toBe(false);
    await publish(store, "x", "pages");
    expect((await store.get("x")).importedImages).toBe(false);
    // Even a partial import marks it: the files are the caller's whatever comes next.
    await store.importImages("x", [{ name: "pstree.img", data: Buffer.from("p") }], 0);
    expect((await store.get("x")).importedImages).toBe(true);
    await store.importImages("x", [{ name: "inventory.img", data: Buffer.from("i") }], 0);
    expect(JSON.parse(await fs.readFile(join(root, "x", META_FILE), "utf8")).importedImages).toBe(true);
    for (const [child, parent] of [
      ["x-child", "x"],
      ["x-grandchild", "x-child"],
    ]) {
      const staged = await store.stage(child as string, parent);
      await writeImages(staged.path);
      expect((await staged.publish(meta({ parentId: parent }))).importedImages).toBe(true);
    }
    const plain = await store.stage("own-child", "own");
    expect((await plain.publish(meta({ parentId: "own" }))).importedImages).toBe(false);
  });

  test("a dump a page server began was completed by an import, marked or not (checkpoints from before the mark)", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "legacy", "pages");
    await fs.writeFile(join(root, "legacy", "page-server.log"), "received\n");
    expect((await store.get("legacy")).importedImages).toBe(false);
    const metaPath = join(root, "legacy", META_FILE);
    const old = JSON.parse(await fs.readFile(metaPath, "utf8"));
    await fs.writeFile(metaPath, JSON.stringify({ ...old, kind: "dump" }));
    expect((await store.get("legacy")).importedImages).toBe(true);
  });

  test("import refuses other kinds, bad or repeated names, and replacing a file; a failed import leaves nothing", async () => {
    const store = await ImageStore.open(root);
    await publish(store, "d", "dump");
    await expect(
      store.importImages("d", [{ name: "core-1.img", data: Buffer.alloc(1) }], 0),
    ).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
    await publish(store, "p", "pages");
    for (const name of ["../x.img", "meta.json", "dump.log", ".hidden.img", "a/b.img", ""]) {
      await expect(store.importImages("p", [{ name, data: Buffer.alloc(1) }], 0), name).rejects.toMatchObject(
        {
          code: "INVALID_ARGUMENT",
        },
      );
    }
    const twice = [
      { name: "core-1.img", data: Buffer.alloc(1) },
      { name: "core-1.img", data: Buffer.alloc(1) },
    ];
    await expect(store.importImages("p", twice, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    const clash = [
      { name: "core-1.img", data: Buffer.alloc(1) },
      { name: "pages-65537.img", data: Buffer.alloc(1) },
    ];
    await expect(store.importImages("p", clash, 0)).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    expect(readdirSync(join(root, "p")).sort()).toEqual(["meta.json", "pages-65537.img"]);
    expect((await fs.readFile(join(root, "p", "pages-65537.img"))).length).toBe(4096);
    expect((await store.get("p")).kind).toBe("pages");
  });
});
