// One operation per process tree, and a cap on CRIU workers (docs/reliability.md): 50 dumps of 10
// processes at once. Each tree's first dump is held at its pre-dump callback until every other
// call has been answered, so exactly one per tree proceeds whatever the timing.
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { dumpStart, runSession, type SessionOutcome } from "../support/session.js";

let gw: TestGateway;
const processes = new TestProcesses();

beforeAll(async () => {
  gw = await startTestGateway({ callbackTimeoutMs: 120_000 });
});

afterAll(async () => {
  await gw.close();
});

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(gw, { waitForWorkers: true });
});

describe("concurrent dumps", () => {
  it("of one tree: exactly one proceeds, the others are refused naming the operation holding it", async () => {
    const trees = await Promise.all(
      Array.from({ length: 10 }, (_, i) => processes.counter(gw.dir, `tree-${i}`)),
    );
    let refusals = 0;
    let releaseHeld!: () => void;
    const held = new Promise<void>((resolve) => {
      releaseHeld = resolve;
    });
    const calls: Promise<SessionOutcome>[] = [];
    for (const [i, tree] of trees.entries()) {
      for (let k = 0; k < 5; k++) {
        const start = dumpStart(`tree-${i}-${k}`, { pid: tree.pid, leaveRunning: true });
        const call = runSession(gw.client, start, async () => {
          await held;
          return { success: true };
        }).then((outcome) => {
          if (outcome.error && ++refusals === 40) releaseHeld();
          return outcome;
        });
        calls.push(call);
      }
    }
    const outcomes = await Promise.all(calls);
    for (const [i] of trees.entries()) {
      const mine = outcomes.slice(i * 5, i * 5 + 5);
      const done = mine.filter((o) => o.result?.dumpResult);
      expect(done).toHaveLength(1);
      const refused = mine.filter((o) => o.error);
      expect(refused.map((o) => status[o.error?.code ?? 0])).toEqual(Array(4).fill("FAILED_PRECONDITION"));
      const holder = done[0]?.operationId;
      for (const o of refused) {
        expect(o.error?.details).toContain(
          `is being checkpointed by operation ${holder} (dump into checkpoint`,
        );
      }
    }
  }, 180_000);
});
