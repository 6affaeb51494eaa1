// Migrate between two gateways on two "hosts" (namespaces made by the test, test/support/twoHosts):
// the tree moves and runs on the target, and every failure before the switch leaves it running on
// the source, untouched.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationMode } from "../../gen/criu/gateway/v1/gateway.js";
import { eventNames, expectCounting, migrate, procState, startHostCounter } from "../support/migration.js";
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
    for (const host of [a, b]) {
      const list = await new Promise<unknown[]>((resolve, reject) =>
        host.client.listCheckpoints({}, (err, res) => (err ? reject(err) : resolve(res?.checkpoints ?? []))),
      );
      expect(list).toEqual([]);
    }
    process.kill(moved ?? 0, "SIGKILL");
  });
});

describe("failures before the switch leave the process running on the source", () => {
  it("a target that refuses after the freeze (its checkpoint id is taken): the tree continues on the source", async () => {
    const { a, b } = hosts;
    const counter = await startHostCounter(a, "refused");
    await new Promise<void>((resolve, reject) =>
      b.client.cpuinfoDump({ checkpointId: "taken", options: undefined }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
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
  });

  it("a target this gateway may not connect to: refused before anything is frozen", async () => {
    const { a } = hosts;
    const counter = await startHostCounter(a, "unlisted");
    const outcome = await migrate(a.client, { pid: counter.nsPid, target: "unix:/nowhere.sock" });
    expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(outcome.error?.details).toContain("not configured to connect to");
    expect(outcome.events).toEqual([]);
    await expectCounting(counter.read, "the counter to count on");
    process.kill(counter.pid, "SIGKILL");
  });
});

describe("modes this host cannot do are refused before anything is frozen", () => {
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
