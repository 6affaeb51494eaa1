// The worker pool (src/criu/workerPool.ts) against the scripted fake `criu swrk`: every worker it
// starts is registered until reaped, kept workers are reused, and drain leaves none behind.
import { afterAll, describe, expect, test } from "vitest";
import { CriuReqType } from "../../src/criu/wire.js";
import { WorkerPool } from "../../src/criu/workerPool.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";

afterAll(() => {
  removeFakeCriuDirs();
});

const requestPids = (fake: ReturnType<typeof fakeCriu>) =>
  fake
    .log()
    .filter((e) => e.event === "request")
    .map((e) => e.pid);

describe("the worker pool", () => {
  test("runs each exchange on a fresh worker and reaps it", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin });
    await pool.exchange({ type: CriuReqType.VERSION });
    await pool.exchange({ type: CriuReqType.VERSION });
    expect(pool.pids()).toEqual([]);
    const [first, second] = requestPids(fake);
    expect(first).not.toBe(second);
  });

  test("keeps a worker CRIU kept open and serves the next such request on it", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin, idleWorkerMs: 60_000 });
    await pool.exchangeKept({ type: CriuReqType.VERSION });
    const kept = pool.idlePid();
    expect(kept).toBeDefined();
    expect(pool.pids()).toEqual([kept]);
    await pool.exchangeKept({ type: CriuReqType.FEATURE_CHECK });
    expect(requestPids(fake)).toEqual([kept, kept]);
    await pool.drain();
    expect(pool.pids()).toEqual([]);
    // Once drained, nothing is kept any more.
    await pool.exchangeKept({ type: CriuReqType.VERSION });
    expect(pool.idlePid()).toBeUndefined();
    expect(pool.pids()).toEqual([]);
  });

  test("drain waits for a worker in use until its caller is done with it", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin });
    const worker = await pool.acquire();
    expect(pool.pids()).toEqual([worker.pid]);
    let drained = false;
    const draining = pool.drain().then(() => {
      drained = true;
    });
    // keep_open: the worker stays after answering, until its caller closes it.
    await worker.request({ type: CriuReqType.VERSION, keepOpen: true });
    expect(drained).toBe(false);
    await worker.close();
    await draining;
    expect(pool.pids()).toEqual([]);
  });
});
