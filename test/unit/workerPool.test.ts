// The worker pool (src/criu/workerPool.ts) against the scripted fake `criu swrk`: every worker it
// starts is registered until reaped, kept workers are reused, and drain leaves none behind.
import { afterAll, describe, expect, test } from "vitest";
import type { WorkerFailure } from "../../src/criu/swrkWorker.js";
import { CriuReqType } from "../../src/criu/wire.js";
import { WorkerPool } from "../../src/criu/workerPool.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";
import { waitFor } from "../support/workload.js";

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

describe("the pool's limit", () => {
  test("under 200 requests at once: the cap runs, the queue waits, the rest are refused at once", async () => {
    // The slow fake never answers: whatever runs holds its slot until the caller gives up.
    const fake = fakeCriu("slow");
    const pool = new WorkerPool({ criuBin: fake.bin, maxWorkers: 2, maxQueued: 3 });
    const giveUp = new AbortController();
    const calls = Array.from({ length: 200 }, () =>
      pool.exchange({ type: CriuReqType.VERSION }, { signal: giveUp.signal }).then(
        () => "answered",
        (err: WorkerFailure) => err.kind,
      ),
    );
    const refused = await Promise.all(calls.slice(5));
    expect(refused).toEqual(Array(195).fill("busy"));
    expect(pool.load()).toEqual({ running: 2, waiting: 3 });
    await waitFor(() => pool.pids().length === 2, "the two workers to run");
    giveUp.abort();
    expect((await Promise.all(calls.slice(0, 5))).sort()).toEqual(Array(5).fill("aborted"));
    await pool.drain();
    expect(pool.pids()).toEqual([]);
    expect(pool.load()).toEqual({ running: 0, waiting: 0 });
  });

  test("a slot given back goes to the first in line", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin, maxWorkers: 1, maxQueued: 10 });
    const first = await pool.acquire();
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      pool.acquire().then(async (w) => {
        order.push(n);
        await w.close();
      }),
    );
    expect(pool.load()).toEqual({ running: 1, waiting: 3 });
    await first.close();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
    expect(pool.load()).toEqual({ running: 0, waiting: 0 });
  });
});

test("a worker that stops counting keeps running and frees its slot for the next", async () => {
  const fake = fakeCriu("criu-loop");
  const pool = new WorkerPool({ criuBin: fake.bin, maxWorkers: 1, maxQueued: 0 });
  const waiter = await pool.acquire();
  pool.stopCounting(waiter);
  expect(pool.load()).toEqual({ running: 0, waiting: 0 });
  const next = await pool.acquire();
  expect(pool.pids().sort()).toEqual([waiter.pid, next.pid].sort());
  await Promise.all([waiter.close(), next.close()]);
  expect(pool.load()).toEqual({ running: 0, waiting: 0 });
});
