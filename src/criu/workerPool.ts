// Every `criu swrk` worker the gateway runs comes from here: started and registered in one place,
// reused when CRIU kept it open, and waited for at shutdown.
//
// Callers ask for a worker (`acquire`) or for one exchange (`exchange`, `exchangeKept`) and never
// start one themselves, so that how workers come to be (started on demand today; started ahead of
// need and refilled in the background later) can change here without changing them.

import { type ExchangeOptions, SwrkWorker, WorkerFailure } from "./swrkWorker.js";
import type { CriuReq, CriuResp } from "./wire.js";

export interface WorkerPoolOptions {
  criuBin: string;
  /**
   * Workers running at once (a worker kept open for reuse does not count); a request for one more
   * waits its turn. Unlimited when absent.
   */
  maxWorkers?: number;
  /** Requests that may wait for a worker; one more fails at once (WorkerFailure "busy"). */
  maxQueued?: number;
  /**
   * How long a worker that answered a request with keep_open (VERSION, FEATURE_CHECK) is kept for
   * the next such request, which then skips a fork and exec; 0 never keeps one.
   */
  idleWorkerMs?: number;
}

export class WorkerPool {
  readonly #criuBin: string;
  readonly #idleWorkerMs: number;
  readonly #maxWorkers: number;
  readonly #maxQueued: number;
  /** Slots taken: by workers that run, or granted to a caller about to start one. */
  #slots = 0;
  /** Workers that hold a slot (a kept worker does not), until they exit. */
  readonly #holding = new Set<SwrkWorker>();
  /** Requests waiting for a slot, first come first served. */
  readonly #queue: { grant(): void }[] = [];
  /** Live workers by pid: shutdown waits for them, and dumps of them are refused. */
  readonly #workers = new Map<number, SwrkWorker>();
  /** At most one worker kept open after a keep_open request, waiting for the next. */
  #idle: { worker: SwrkWorker; timer: NodeJS.Timeout } | undefined;
  #draining = false;

  constructor(options: WorkerPoolOptions) {
    this.#criuBin = options.criuBin;
    this.#idleWorkerMs = options.idleWorkerMs ?? 0;
    this.#maxWorkers = options.maxWorkers ?? Number.POSITIVE_INFINITY;
    this.#maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
  }

  /**
   * A fresh worker, registered until it is reaped, once a slot is free: the request waits in the
   * queue until then (WorkerFailure "busy" when the queue is full, "aborted" when `signal` fires
   * first). The caller owns the worker and must `close()` it. A worker that cannot start reports
   * why on its first request (WorkerFailure "spawn").
   */
  async acquire(signal?: AbortSignal): Promise<SwrkWorker> {
    await this.#takeSlot(signal);
    return this.#hold(() => this.#start());
  }

  /**
   * The worker stays the caller's and keeps running, but gives its slot back: for a worker that
   * will mostly wait (a page server waiting for a dump) and must not keep others from running.
   */
  stopCounting(worker: SwrkWorker): void {
    this.#release(worker);
  }

  /** Runs `use` with a fresh worker and always closes (and so reaps) it afterwards. */
  async withWorker<T>(use: (worker: SwrkWorker) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const worker = await this.acquire(signal);
    try {
      return await use(worker);
    } finally {
      await worker.close();
    }
  }

  /** One request on a fresh worker, which is always reaped. Failures are WorkerFailures. */
  exchange(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    return this.withWorker((worker) => worker.request(req, options), options.signal);
  }

  /**
   * One request that CRIU can answer on a kept worker (VERSION, FEATURE_CHECK): sent with
   * keep_open to the idle worker when there is one, else to a fresh one, which is then parked for
   * idleWorkerMs. A kept worker that has died meanwhile costs one retry on a fresh worker.
   */
  async exchangeKept(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    if (this.#idleWorkerMs <= 0 || this.#draining) return this.exchange(req, options);
    await this.#takeSlot(options.signal);
    const kept = this.#takeIdle();
    const worker = this.#hold(() => kept ?? this.#start());
    let resp: CriuResp;
    try {
      resp = await worker.request({ ...req, keepOpen: true }, options);
    } catch (err) {
      await worker.close();
      if (kept && err instanceof WorkerFailure && err.kind === "ended") return this.exchange(req, options);
      throw err;
    }
    if (!resp.success || this.#draining || this.#idle) await worker.close();
    else this.#park(worker);
    return resp;
  }

  /** Whether `pid` is one of the pool's workers. */
  has(pid: number): boolean {
    return this.#workers.has(pid);
  }

  /** Pids of the workers running now. */
  pids(): number[] {
    return [...this.#workers.keys()];
  }

  /** The pid of the worker kept open for the next keep_open request, if any. */
  idlePid(): number | undefined {
    return this.#idle?.worker.pid;
  }

  /**
   * Keeps no worker from now on and waits until every worker has exited. Workers in use are the
   * business of their callers, who were told to stop (cancelled) before this is called.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    await this.#takeIdle()?.close();
    await Promise.all([...this.#workers.values()].map((w) => w.exited));
  }

  /** Slots taken (workers running, a kept one aside) and requests waiting for one. */
  load(): { running: number; waiting: number } {
    return { running: this.#slots, waiting: this.#queue.length };
  }

  #start(): SwrkWorker {
    const worker = SwrkWorker.start({
      criuBin: this.#criuBin,
      onReaped: (pid) => this.#workers.delete(pid),
    });
    if (worker.pid !== undefined) this.#workers.set(worker.pid, worker);
    return worker;
  }

  /** The worker `get` gives takes the slot its caller was granted, until it exits. */
  #hold(get: () => SwrkWorker): SwrkWorker {
    let worker: SwrkWorker;
    try {
      worker = get();
    } catch (err) {
      this.#giveSlot();
      throw err;
    }
    this.#holding.add(worker);
    void worker.exited.then(() => this.#release(worker));
    return worker;
  }

  /** A worker gives its slot back (when it exits, or when it is kept for reuse). */
  #release(worker: SwrkWorker): void {
    if (this.#holding.delete(worker)) this.#giveSlot();
  }

  #giveSlot(): void {
    // The slot passes straight to the first in line, if any.
    const next = this.#queue.shift();
    if (next) next.grant();
    else this.#slots--;
  }

  async #takeSlot(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) {
      throw new WorkerFailure("aborted", "cancelled before a CRIU worker was free", undefined, "");
    }
    if (this.#slots < this.#maxWorkers) {
      this.#slots++;
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      throw new WorkerFailure(
        "busy",
        `all ${this.#slots} CRIU workers the gateway runs at once are busy, and ${this.#queue.length} requests already wait for one`,
        undefined,
        "",
      );
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const at = this.#queue.indexOf(entry);
        if (at >= 0) this.#queue.splice(at, 1);
        reject(new WorkerFailure("aborted", "cancelled while waiting for a CRIU worker", undefined, ""));
      };
      const entry = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(entry);
    });
  }

  #park(worker: SwrkWorker): void {
    const timer = setTimeout(() => {
      if (this.#idle?.worker === worker) this.#idle = undefined;
      void worker.close();
    }, this.#idleWorkerMs);
    timer.unref();
    this.#idle = { worker, timer };
    this.#release(worker);
    // Gone on its own: nothing to reuse.
    void worker.exited.then(() => {
      if (this.#idle?.worker === worker) this.#takeIdle();
    });
  }

  #takeIdle(): SwrkWorker | undefined {
    const kept = this.#idle;
    this.#idle = undefined;
    if (kept) clearTimeout(kept.timer);
    return kept?.worker;
  }
}
