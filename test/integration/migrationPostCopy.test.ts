// POST_COPY between two gateways on two "hosts" (test/support/twoHosts): the tree runs on the
// target after a brief freeze while its memory follows through the migration's own call; every
// failure before the switch leaves it running on the source; losing the source after the switch
// loses the process, and the target kills it rather than leave it hanging.
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationMode } from "../../gen/criu/gateway/v1/gateway.js";
import { eventNames, expectCounting, migrate, procState, startHostCounter } from "../support/migration.js";
import { startTwoHosts, type TwoHosts } from "../support/twoHosts.js";
import { waitFor } from "../support/workload.js";

const PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size";
let hosts: TwoHosts;
let pipeMaxBefore: string;

beforeAll(async () => {
  // CRIU's page server grows its pipes to about 3.2 MiB and, without CAP_SYS_RESOURCE (as here),
  // cannot beyond this limit.
  pipeMaxBefore = readFileSync(PIPE_MAX_SIZE, "utf8");
  writeFileSync(PIPE_MAX_SIZE, String(4 * 1024 * 1024));
  hosts = await startTwoHosts();
});

afterAll(async () => {
  await hosts?.close();
  if (pipeMaxBefore) writeFileSync(PIPE_MAX_SIZE, pipeMaxBefore);
});

const POST_COPY = MigrationMode.MIGRATION_MODE_POST_COPY;

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
    for (const host of [a, b]) {
      const list = await new Promise<unknown[]>((resolve, reject) =>
        host.client.listCheckpoints({}, (err, res) => (err ? reject(err) : resolve(res?.checkpoints ?? []))),
      );
      expect(list).toEqual([]);
    }
    process.kill(moved ?? 0, "SIGKILL");
  });
});
