// Migrate between two gateways on two "hosts" (namespaces made by the test, test/support/twoHosts):
// the tree moves and runs on the target, and every failure before the switch leaves it running on
// the source, untouched. Security claim 32 (docs/security.md).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CriuOptions, MigrationMode } from "../../gen/criu/gateway/v1/gateway.js";
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
  startHostRedis,
  takeCheckpointId,
} from "../support/migration.js";
import { holdPipeMaxSize } from "../support/pipeMaxSize.js";
import { startTwoHosts, type TwoHosts } from "../support/twoHosts.js";
import { waitFor } from "../support/workload.js";

let hosts: TwoHosts;

beforeAll(async () => {
  hosts = await startTwoHosts();
});

afterAll(async () => {
  await hosts?.close();
});

describe("STOP_AND_COPY", () => {
  it("moves a counting process to the target, where it counts on from where it was", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "moved");
    const outcome = await migrate(a.client, {
      pid: counter.nsPid,
      target: b.address,
      mode: MigrationMode.MIGRATION_MODE_STOP_AND_COPY,
    });
    expect(outcome.error?.details).toBeUndefined();
    expect(eventNames(outcome.events)).toEqual([
      "frozen",
      "imagesSent",
      "restored",
      "sourceReleased",
      "done",
    ]);
    const done = outcome.events.at(-1)?.done;
    expect(done?.targetPid).toBe(counter.nsPid);
    expect(done?.statistics?.imageBytes).toBeGreaterThan(0);
    expect(done?.statistics?.frozenTimeUs).toBeGreaterThan(0);
    // Gone here; there, a process of b's namespace with the same pid counts on.
    await waitFor(() => procState(counter.pid) === "gone", "the source copy to be gone");
    const moved = b.hostPidOf(counter.nsPid);
    expect(moved).toBeDefined();
    await expectCounting(counter.read, "the counter to count on the target");
    expect(procState(moved ?? 0)).not.toBe("T");
    // No checkpoint stays on either host.
    for (const host of [a, b]) expect(await checkpointsOf(host)).toEqual([]);
    process.kill(moved ?? 0, "SIGKILL");
  });
});

describe("STOP_AND_COPY of 1 GiB", () => {
  it(
    "moves a process of 1 GiB of numbered pages, every page intact",
    async () => {
      const { a, b } = hosts;
      const big = await startHostMemoryCounter(a, "big-sc", 1024);
      const outcome = await migrate(a.client, { pid: big.nsPid, target: b.address });
      expect(outcome.error?.details).toBeUndefined();
      expect(outcome.events.at(-1)?.done?.statistics?.imageBytes).toBeGreaterThanOrEqual(1 << 30);
      await waitFor(() => procState(big.pid) === "gone", "the source copy to be gone");
      await expectMemoryIntact(big, "the moved process to check all of its memory");
      process.kill(b.hostPidOf(big.nsPid) ?? 0, "SIGKILL");
    },
    10 * 60_000,
  );
});

describe("redis-server", () => {
  it("migrates with its keys and answers on the target, across the veth pair too", async () => {
    const { a, b } = hosts;
    const port = "6390";
    const redis = await startHostRedis(a, Number(port));
    expect((await a.exec("redis-cli", "-p", port, "set", "greeting", "moved")).stdout.trim()).toBe("OK");
    const outcome = await migrate(a.client, { pid: redis.nsPid, target: b.address });
    expect(outcome.error?.details).toBeUndefined();
    expect(outcome.events.at(-1)?.done?.targetPid).toBe(redis.nsPid);
    await waitFor(() => procState(redis.pid) === "gone", "redis to be gone from the source");
    expect((await b.exec("redis-cli", "-p", port, "get", "greeting")).stdout.trim()).toBe("moved");
    // From the source host's namespace, over the veth pair, to its new home.
    expect((await a.exec("redis-cli", "-h", b.ip, "-p", port, "get", "greeting")).stdout.trim()).toBe(
      "moved",
    );
    process.kill(b.hostPidOf(redis.nsPid) ?? 0, "SIGKILL");
  });
});

describe("criu-gateway migrate", () => {
  it("moves the tree and prints its pid on the target; a refusal is a message and exit status 1", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "cli");
    const moved = await run(process.execPath, [
      bin,
      "migrate",
      "--pid",
      String(counter.nsPid),
      "--to",
      b.address,
      "--addr",
      a.address,
    ]);
    expect(moved.stderr).toBe("");
    expect(moved.stdout).toContain(`now runs on ${b.address} as pid ${counter.nsPid}`);
    expect(moved.code).toBe(0);
    await expectCounting(counter.read, "the counter to count on the target");
    process.kill(b.hostPidOf(counter.nsPid) ?? 0, "SIGKILL");

    const refused = await run(process.execPath, [
      bin,
      "migrate",
      "--pid",
      "1",
      "--to",
      b.address,
      "--mode",
      "pre-copy",
      "--addr",
      a.address,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("mem_track");
  });
});

describe("failures before the switch leave the process running on the source", () => {
  it("a target that refuses after the freeze (its checkpoint id is taken): the tree continues on the source", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "refused");
    await takeCheckpointId(b, "taken");
    const outcome = await migrate(a.client, { pid: counter.nsPid, target: b.address, checkpointId: "taken" });
    expect(outcome.error?.code).toBe(status.ALREADY_EXISTS);
    expect(outcome.error?.details).toContain(`target ${b.address}`);
    // It was frozen (the dump ran) and runs again here, the same process.
    expect(eventNames(outcome.events)[0]).toBe("frozen");
    expect(eventNames(outcome.events)).not.toContain("restored");
    expect(procState(counter.pid)).not.toBe("T");
    await expectCounting(counter.read, "the counter to count on the source again");
    expect(b.hostPidOf(counter.nsPid)).toBeUndefined();
    process.kill(counter.pid, "SIGKILL");
    await deleteCheckpoint(b, "taken");
  });

  it("a restore that fails on the target: the tree continues on the source, nothing stays on the target", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "unrestorable");
    const outcome = await migrate(a.client, {
      pid: counter.nsPid,
      target: b.address,
      // A namespace file that is not there: CRIU fails the restore after the images have arrived.
      restoreOptions: CriuOptions.fromPartial({ joinNs: [{ ns: "net", nsFile: "/nonexistent-netns" }] }),
    });
    expect(outcome.error?.details).toContain(`target ${b.address}`);
    expect(eventNames(outcome.events)).toEqual(["frozen", "imagesSent"]);
    expect(procState(counter.pid)).not.toBe("T");
    await expectCounting(counter.read, "the counter to count on the source again");
    expect(b.hostPidOf(counter.nsPid)).toBeUndefined();
    expect(await checkpointsOf(b)).toEqual([]);
    process.kill(counter.pid, "SIGKILL");
  });

  it("a target this gateway may not connect to: refused before anything is frozen", async () => {
    const { a } = hosts;
    const counter = await startHostCounter(a, "unlisted");
    const outcome = await migrate(a.client, { pid: counter.nsPid, target: "unix:/nowhere.sock" });
    expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(outcome.error?.details).toContain("not configured to push to");
    expect(outcome.events).toEqual([]);
    await expectCounting(counter.read, "the counter to count on");
    process.kill(counter.pid, "SIGKILL");
  });
});

describe("modes this host cannot do are refused before anything is frozen", () => {
  it(
    "POST_COPY with fs.pipe-max-size below 4 MiB: FAILED_PRECONDITION naming the setting",
    async () => {
      const { a, b } = hosts;
      const counter = await startHostCounter(a, "postcopy");
      // The kernel's default; CRIU's page server needs about 3.2 MiB.
      const giveBack = await holdPipeMaxSize(1048576);
      try {
        const outcome = await migrate(a.client, {
          pid: counter.nsPid,
          target: b.address,
          mode: MigrationMode.MIGRATION_MODE_POST_COPY,
        });
        expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
        expect(outcome.error?.details).toContain("/proc/sys/fs/pipe-max-size");
        expect(outcome.events).toEqual([]);
      } finally {
        giveBack();
      }
      await expectCounting(counter.read, "the counter to count on");
      process.kill(counter.pid, "SIGKILL");
      // Another test file may hold fs.pipe-max-size for minutes first.
    },
    16 * 60_000,
  );

  it("PRE_COPY without dirty-memory tracking: FAILED_PRECONDITION naming mem_track", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "precopy");
    const outcome = await migrate(a.client, {
      pid: counter.nsPid,
      target: b.address,
      mode: MigrationMode.MIGRATION_MODE_PRE_COPY,
    });
    expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(outcome.error?.details).toContain("mem_track");
    expect(outcome.events).toEqual([]);
    await expectCounting(counter.read, "the counter to count on");
    process.kill(counter.pid, "SIGKILL");
  });
});

describe("authorization across the two gateways", () => {
  let strict: TwoHosts;
  beforeAll(async () => {
    // b's policy lets root (the source gateway, on b's unix socket) do nothing but Version.
    strict = await startTwoHosts({
      extraServeArgs: (name, dir) => {
        if (name === "a") return [];
        const file = join(dir, "b-policy.json");
        writeFileSync(
          file,
          JSON.stringify({ grants: [{ name: "probe", identities: [{ unix_uid: 0 }], rpcs: ["Version"] }] }),
        );
        return ["--policy", file];
      },
    });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it("a target whose policy does not grant the source gateway AcceptMigration refuses, and the tree runs on at the source", async () => {
    const { a, b } = strict;
    const counter = await startHostCounter(a, "denied");
    const outcome = await migrate(a.client, { pid: counter.nsPid, target: b.address });
    expect(outcome.error?.code).toBe(status.PERMISSION_DENIED);
    expect(outcome.error?.details).toContain(`target ${b.address}`);
    expect(outcome.error?.details).toContain("AcceptMigration");
    expect(eventNames(outcome.events)).not.toContain("restored");
    expect(procState(counter.pid)).not.toBe("T");
    await expectCounting(counter.read, "the counter to count on the source again");
    process.kill(counter.pid, "SIGKILL");
  });
});
