// POST_COPY between two gateways on two "hosts" (test/support/twoHosts): the tree runs on the
// target after a brief freeze while its memory follows through the migration's own call; every
// failure before the switch leaves it running on the source; losing the source after the switch
// loses the process, and the target kills it rather than leave it hanging.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationMode } from "../../gen/criu/gateway/v1/gateway.js";
import { bin, run } from "../support/cliGateway.js";
import {
  checkpointsOf,
  deleteCheckpoint,
  eventNames,
  expectCounting,
  expectMemoryIntact,
  migrate,
  procState,
  startHostCounter,
  startHostMemoryCounter,
  startHostPython,
  startHostRedis,
  takeCheckpointId,
} from "../support/migration.js";
import { holdPipeMaxSize } from "../support/pipeMaxSize.js";
import { startTwoHosts, type TwoHosts } from "../support/twoHosts.js";
import { waitFor } from "../support/workload.js";

let hosts: TwoHosts;
let givePipeMaxSizeBack: (() => void) | undefined;

beforeAll(async () => {
  // CRIU's page server grows its pipes to about 3.2 MiB and, without CAP_SYS_RESOURCE (as here),
  // cannot beyond this limit.
  givePipeMaxSizeBack = await holdPipeMaxSize(4 * 1024 * 1024);
  hosts = await startTwoHosts();
}, 16 * 60_000);

afterAll(async () => {
  await hosts?.close();
  givePipeMaxSizeBack?.();
});

const POST_COPY = MigrationMode.MIGRATION_MODE_POST_COPY;

/** What a host's image store holds. */
function leftIn(host: { dir: string }): string[] {
  return readdirSync(join(host.dir, "images"));
}

/** Listens on a unix socket (argv[1]) and holds the connection it accepts. */
const PEER = `
import os, socket, sys, time
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen()
with open(sys.argv[-1] + ".tmp", "w") as f: f.write(str(os.getpid()))
os.rename(sys.argv[-1] + ".tmp", sys.argv[-1])
held = listener.accept()
time.sleep(3600)
`;

/** Leads its own session, connected to PEER's socket: half of a connection that leaves its tree. */
const TIED = `
import os, socket, sys, time
os.setsid()
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
with open(sys.argv[-1] + ".tmp", "w") as f: f.write(str(os.getpid()))
os.rename(sys.argv[-1] + ".tmp", sys.argv[-1])
time.sleep(3600)
`;

describe("POST_COPY", () => {
  it("moves a counting process: it runs on the target, its memory follows, nothing stays behind", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "lazy");
    const outcome = await migrate(a.client, { pid: counter.nsPid, target: b.address, mode: POST_COPY });
    expect(outcome.error?.details).toBeUndefined();
    // Memory moves from the restore on (CRIU's restore needs some of it): progress comes between.
    const steps = eventNames(outcome.events).filter((name) => name !== "memory");
    expect(steps).toEqual(["frozen", "imagesSent", "restored", "sourceReleased", "done"]);
    const memory = outcome.events.filter((e) => e.memory).map((e) => e.memory);
    expect(memory.length).toBeGreaterThan(0);
    const last = memory.at(-1);
    expect(last?.pagesMoved).toBe(last?.pagesTotal);
    const done = outcome.events.at(-1)?.done;
    expect(done?.targetPid).toBe(counter.nsPid);
    expect(done?.statistics?.lazyPages).toBeGreaterThan(0);
    expect(done?.statistics?.lazyPages).toBe(last?.pagesTotal);
    await waitFor(() => procState(counter.pid) === "gone", "the source copy to be gone");
    const moved = b.hostPidOf(counter.nsPid);
    expect(moved).toBeDefined();
    await expectCounting(counter.read, "the counter to count on the target");
    for (const host of [a, b]) expect(await checkpointsOf(host)).toEqual([]);
    // Nor the directories the dump and the lazy-pages daemon worked in, nor a stopped tree's record.
    for (const host of [a, b]) expect(leftIn(host)).toEqual([]);
    // Warm workers were held back while the tree was frozen, and come back afterwards.
    for (const host of [a, b])
      await waitFor(() => host.workerCount() >= 2, "the warm workers to be refilled");
    process.kill(moved ?? 0, "SIGKILL");
  });
});

describe("POST_COPY of 1 GiB", () => {
  it("runs on the target before its memory has moved, and every page arrives intact", async () => {
    const { a, b } = hosts;
    const big = await startHostMemoryCounter(a, "big", 1024);
    const outcome = await migrate(a.client, { pid: big.nsPid, target: b.address, mode: POST_COPY });
    expect(outcome.error?.details).toBeUndefined();
    const done = outcome.events.at(-1)?.done;
    // 262,144 pages of 4 KiB were filled; CRIU leaves the process's anonymous memory lazy.
    expect(done?.statistics?.lazyPages).toBeGreaterThanOrEqual(262_144);
    // The images sent hold no memory to speak of: it moved through the page server.
    expect(done?.statistics?.imageBytes).toBeLessThan(64 * 1024 * 1024);
    await waitFor(() => procState(big.pid) === "gone", "the source copy to be gone");
    await expectMemoryIntact(big, "the moved process to check all of its memory again", 2);
    process.kill(b.hostPidOf(big.nsPid) ?? 0, "SIGKILL");
  });
});

describe("redis-server by POST_COPY", () => {
  it("migrates with its keys and answers on the target", async () => {
    const { a, b } = hosts;
    const port = "6391";
    const redis = await startHostRedis(a, Number(port));
    expect((await a.exec("redis-cli", "-p", port, "set", "greeting", "lazily")).stdout.trim()).toBe("OK");
    const outcome = await migrate(a.client, { pid: redis.nsPid, target: b.address, mode: POST_COPY });
    expect(outcome.error?.details).toBeUndefined();
    await waitFor(() => procState(redis.pid) === "gone", "redis to be gone from the source");
    expect((await b.exec("redis-cli", "-p", port, "get", "greeting")).stdout.trim()).toBe("lazily");
    process.kill(b.hostPidOf(redis.nsPid) ?? 0, "SIGKILL");
  });
});

describe("criu-gateway migrate --mode post-copy", () => {
  it("moves the tree and prints its pid on the target and the memory that followed", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "cli-lazy");
    const moved = await run(process.execPath, [
      bin,
      "migrate",
      "--pid",
      String(counter.nsPid),
      "--to",
      b.address,
      "--mode",
      "post-copy",
      "--addr",
      a.address,
    ]);
    expect(moved.stderr).toBe("");
    expect(moved.stdout).toMatch(
      new RegExp(
        `now runs on ${b.address} as pid ${counter.nsPid} \\(frozen [0-9.]+ ms, .* of images, then [1-9][0-9]* pages of memory\\)`,
      ),
    );
    expect(moved.code).toBe(0);
    await expectCounting(counter.read, "the counter to count on the target");
    process.kill(b.hostPidOf(counter.nsPid) ?? 0, "SIGKILL");
  });
});

describe("POST_COPY failures", () => {
  it("before the switch (the target refuses once the tree is frozen): the tree continues on the source", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "lazy-refused");
    await takeCheckpointId(b, "lazy-taken");
    const outcome = await migrate(a.client, {
      pid: counter.nsPid,
      target: b.address,
      mode: POST_COPY,
      checkpointId: "lazy-taken",
    });
    expect(outcome.error?.code).toBe(status.ALREADY_EXISTS);
    expect(eventNames(outcome.events)[0]).toBe("frozen");
    expect(eventNames(outcome.events)).not.toContain("restored");
    expect(procState(counter.pid)).not.toBe("T");
    await expectCounting(counter.read, "the counter to count on the source again");
    expect(b.hostPidOf(counter.nsPid)).toBeUndefined();
    process.kill(counter.pid, "SIGKILL");
    await deleteCheckpoint(b, "lazy-taken");
  });

  it("a dump that fails while the target waits for the images: the target ends its restore and keeps nothing", async () => {
    const { a, b } = hosts;
    // A tree CRIU refuses: its unix socket is connected to a process outside it.
    const path = join(a.dir, "peer.sock");
    const peer = await startHostPython(a, "peer", PEER, [path]);
    const tied = await startHostPython(a, "tied", TIED, [path]);
    const outcome = await migrate(a.client, { pid: tied.nsPid, target: b.address, mode: POST_COPY });
    expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(outcome.error?.details).toMatch(/External socket/);
    expect(eventNames(outcome.events)).not.toContain("restored");
    expect(procState(tied.pid)).not.toBe("T");
    // The restore that started with the header, waiting for images that never came, is gone.
    await waitFor(() => !b.childCommands().some((argv) => argv.includes("restore")), "the restore to end");
    await waitFor(() => leftIn(b).length === 0, "the target's directories to go");
    expect(leftIn(a)).toEqual([]);
    for (const p of [tied, peer]) process.kill(p.pid, "SIGKILL");
  });

  it("after the switch (the source's page server dies): the target kills the tree, the call ends with DATA_LOSS", async () => {
    const { a, b } = hosts;
    const big = await startHostMemoryCounter(a, "lost", 1024);
    let restored = false;
    const call = migrate(a.client, { pid: big.nsPid, target: b.address, mode: POST_COPY }, (event) => {
      // Hold the source's page server still from the moment the target has restored the tree,
      // so that memory is still missing when the tree runs there.
      if (event.restored) {
        const server = pageServingWorker(a.gatewayPid() ?? 0);
        if (server) process.kill(server, "SIGSTOP");
        restored = true;
      }
    });
    await waitFor(() => restored, "the target to restore the tree");
    const moved = b.hostPidOf(big.nsPid) ?? 0;
    await waitFor(() => procState(moved) !== "T", "the tree to run on the target");
    const server = pageServingWorker(a.gatewayPid() ?? 0);
    expect(server).toBeDefined();
    process.kill(server ?? 0, "SIGKILL");
    const outcome = await call;
    expect(outcome.error?.code).toBe(status.DATA_LOSS);
    expect(eventNames(outcome.events)).toContain("processLost");
    expect(eventNames(outcome.events)).not.toContain("done");
    // Neither copy lives: the target's was killed rather than left waiting for its memory.
    await waitFor(() => procState(moved) === "gone", "the target to kill the half-moved tree");
    await waitFor(() => procState(big.pid) === "gone", "the source copy to be gone");
  });
});

/** The source gateway's CRIU worker that serves memory: the dumping one, its page socket as fd 4. */
function pageServingWorker(gatewayPid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== gatewayPid) continue;
      // CRIU renames itself for the request ("criu: dump --rpc ..."); warm workers, which hold a
      // spare socket as fd 4 too, are still "criu swrk".
      if (!readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("criu: dump")) continue;
      if (readlinkSync(`/proc/${entry}/fd/4`).startsWith("socket:")) return Number(entry);
    } catch {
      // Gone meanwhile, or no fd 4: not it.
    }
  }
  return undefined;
}
