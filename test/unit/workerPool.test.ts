// The worker pool (src/criu/workerPool.ts) against the scripted fake `criu swrk`: every worker it
// starts is registered until reaped, kept workers are reused, and drain leaves none behind.
import { existsSync, readlinkSync } from "node:fs";
import { Socket } from "node:net";
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

describe("warm workers", () => {
  const warmPool = (fake: ReturnType<typeof fakeCriu>, extra: { warmWorkerIdleMs?: number } = {}) =>
    new WorkerPool({ criuBin: fake.bin, warmWorkers: 2, ...extra });
  const ready = (pool: WorkerPool, n: number) =>
    waitFor(() => pool.readyPids().length === n, `${n} warm workers`);
  const gone = (pid: number) => waitFor(() => !existsSync(`/proc/${pid}`), `worker ${pid} to be reaped`);
  /** A pool over the fake CRIU with its two warm workers started, and their pids. */
  const startedPool = async () => {
    const fake = fakeCriu("criu-loop");
    const pool = warmPool(fake);
    await ready(pool, 2);
    return { fake, pool, before: pool.readyPids() };
  };

  test("are started before any call, and a call is served by the oldest of them", async () => {
    const { fake, pool, before } = await startedPool();
    const [first, second] = before;
    // Waiting on their sockets: no request has reached them.
    expect(requestPids(fake)).toEqual([]);
    await pool.exchange({ type: CriuReqType.VERSION });
    expect(requestPids(fake)).toEqual([first]);
    // Refilled in the background, with a new worker behind the one still waiting.
    await ready(pool, 2);
    expect(pool.readyPids()[0]).toBe(second);
    expect(pool.readyPids()[1]).not.toBe(first);
    await pool.drain();
  });

  test("come with a stream socket as fd 4, whose other end a serving dump gets", async () => {
    const { pool, before } = await startedPool();
    for (const pid of before) expect(readlinkSync(`/proc/${pid}/fd/4`)).toMatch(/^socket:/);
    // Kept requests on both leave them as they were, spare socket included.
    await pool.exchangeKept({ type: CriuReqType.VERSION });
    await pool.exchangeKept({ type: CriuReqType.FEATURE_CHECK });
    const { worker, stream } = await pool.acquireServing();
    expect(before).toContain(worker.pid);
    // Connected to that worker's fd 4 and to nothing else: its exit ends the stream here.
    const ours = new Socket({ fd: stream, readable: true, writable: true });
    const ended = new Promise<void>((resolve) => ours.once("end", () => resolve()));
    ours.resume();
    await worker.close();
    await ended;
    ours.destroy();
    // Other calls take the other warm worker as before.
    const plain = await pool.acquire();
    expect(before.filter((pid) => pid !== worker.pid)).toContain(plain.pid);
    await plain.close();
    await pool.drain();
  });

  test("are not refilled while an operation holds refills back, and are once it lets go", async () => {
    const { pool, before } = await startedPool();
    const release = pool.holdRefills();
    const worker = await pool.acquire();
    expect(worker.pid).toBe(before[0]);
    await worker.close();
    // The refill its exit asked for ran its turn and started nothing.
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(pool.readyPids()).toEqual([before[1]]);
    release();
    await ready(pool, 2);
    expect(pool.readyPids()[0]).toBe(before[1]);
    await pool.drain();
  });

  test("are refilled no sooner than the turn after the one an operation let go in", async () => {
    const { pool, before } = await startedPool();
    const release = pool.holdRefills();
    const worker = await pool.acquire();
    await worker.close();
    release();
    // That turn is the operation's answer's; the one after it, its trailers' (grpc-js sends them a
    // turn after the message): nothing is spawned in between.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.readyPids()).toEqual([before[1]]);
    await ready(pool, 2);
    expect(pool.readyPids()[0]).toBe(before[1]);
    await pool.drain();
  });

  test("a worker that answered a kept request (VERSION) rejoins them instead of a new one", async () => {
    const { fake, pool, before } = await startedPool();
    await pool.exchangeKept({ type: CriuReqType.VERSION });
    await pool.exchangeKept({ type: CriuReqType.FEATURE_CHECK });
    expect(requestPids(fake)).toEqual([before[0], before[1]]);
    expect(pool.pids().sort()).toEqual([...before].sort());
    expect(
      fake
        .log()
        .filter((e) => e.event === "request")
        .every((e) => e.keepOpen),
    ).toBe(true);
    await pool.drain();
  });

  test("a burst of kept requests runs on the workers at hand, every one answered", async () => {
    const { fake, pool, before } = await startedPool();
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => pool.exchangeKept({ type: CriuReqType.VERSION })),
    );
    expect(answers.every((a) => a.success)).toBe(true);
    expect(new Set(requestPids(fake))).toEqual(new Set(before));
    await pool.drain();
  });

  test("a warm worker that dies while it waits is replaced", async () => {
    const { pool, before } = await startedPool();
    const [victim] = before as [number];
    process.kill(victim, "SIGKILL");
    await waitFor(
      () => pool.readyPids().length === 2 && !pool.readyPids().includes(victim),
      "the dead warm worker to be replaced",
    );
    expect(pool.has(victim)).toBe(false);
    await pool.drain();
  });

  test("are closed after the idle limit, and started again by the next call", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = warmPool(fake, { warmWorkerIdleMs: 300 });
    await waitFor(() => pool.readyPids().length > 0, "a warm worker");
    await waitFor(() => pool.pids().length === 0, "idle warm workers to be closed");
    const worker = await pool.acquire();
    await waitFor(
      () => pool.readyPids().some((pid) => pid !== worker.pid),
      "warm workers again after a call",
    );
    await worker.close();
    await pool.drain();
  });

  test("drain closes them and leaves no worker behind", async () => {
    const { pool, before: pids } = await startedPool();
    await pool.drain();
    expect(pool.pids()).toEqual([]);
    expect(pool.readyPids()).toEqual([]);
    for (const pid of pids) await gone(pid);
    // Nothing is started once drained.
    await pool.exchange({ type: CriuReqType.VERSION });
    expect(pool.pids()).toEqual([]);
  });

  test("a CRIU that cannot start is not restarted in a loop", async () => {
    const pool = new WorkerPool({ criuBin: "/nonexistent/criu", warmWorkers: 2 });
    await expect(pool.exchange({ type: CriuReqType.VERSION })).rejects.toMatchObject({ kind: "spawn" });
    expect(pool.pids()).toEqual([]);
    expect(pool.readyPids()).toEqual([]);
    await pool.drain();
  });
});

describe("warm workers under the pool's limit", () => {
  test("do not count against it: a call at the cap waits for a slot, then gets a warm worker", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin, warmWorkers: 2, maxWorkers: 1, maxQueued: 1 });
    await waitFor(() => pool.readyPids().length === 2, "two warm workers");
    expect(pool.load()).toEqual({ running: 0, waiting: 0 });
    const warm = pool.readyPids();
    const first = await pool.acquire();
    expect(first.pid).toBe(warm[0]);
    expect(pool.load()).toEqual({ running: 1, waiting: 0 });
    const second = pool.acquire();
    expect(pool.load()).toEqual({ running: 1, waiting: 1 });
    // The queue is full; a warm worker waiting does not let a third call past the cap.
    await expect(pool.acquire()).rejects.toMatchObject({ kind: "busy" });
    await first.close();
    const next = await second;
    expect(next.pid).toBe(warm[1]);
    await next.close();
    expect(pool.load()).toEqual({ running: 0, waiting: 0 });
    await pool.drain();
    expect(pool.pids()).toEqual([]);
  });

  test("a burst of kept requests at a cap of one is answered, none left waiting", async () => {
    const fake = fakeCriu("criu-loop");
    const pool = new WorkerPool({ criuBin: fake.bin, warmWorkers: 2, maxWorkers: 1, maxQueued: 40 });
    await waitFor(() => pool.readyPids().length === 2, "two warm workers");
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? pool.exchange({ type: CriuReqType.VERSION })
          : pool.exchangeKept({ type: CriuReqType.VERSION }),
      ),
    );
    expect(answers.every((a) => a.success)).toBe(true);
    expect(pool.load()).toEqual({ running: 0, waiting: 0 });
    await pool.drain();
    expect(pool.pids()).toEqual([]);
  });
});
