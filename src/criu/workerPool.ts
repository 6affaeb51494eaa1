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
   * How long a worker that answered a request with keep_open (VERSION, FEATURE_CHECK) is kept for
   * the next such request, which then skips a fork and exec; 0 never keeps one.
   */
  idleWorkerMs?: number;
}

export class WorkerPool {
  readonly #criuBin: string;
  readonly #idleWorkerMs: number;
  /** Live workers by pid: shutdown waits for them, and dumps of them are refused. */
  readonly #workers = new Map<number, SwrkWorker>();
  /** At most one worker kept open after a keep_open request, waiting for the next. */
  #idle: { worker: SwrkWorker; timer: NodeJS.Timeout } | undefined;
  #draining = false;

  constructor(options: WorkerPoolOptions) {
    this.#criuBin = options.criuBin;
    this.#idleWorkerMs = options.idleWorkerMs ?? 0;
  }

  /**
   * A fresh worker, registered until it is reaped. The caller owns it and must `close()` it.
   * A worker that cannot start reports why on its first request (WorkerFailure "spawn").
   */
  async acquire(): Promise<SwrkWorker> {
    const worker = SwrkWorker.start({
      criuBin: this.#criuBin,
      onReaped: (pid) => this.#workers.delete(pid),
    });
    if (worker.pid !== undefined) this.#workers.set(worker.pid, worker);
    return worker;
  }

  /** Runs `use` with a fresh worker and always closes (and so reaps) it afterwards. */
  async withWorker<T>(use: (worker: SwrkWorker) => Promise<T>): Promise<T> {
    const worker = await this.acquire();
    try {
      return await use(worker);
    } finally {
      await worker.close();
    }
  }

  /** One request on a fresh worker, which is always reaped. Failures are WorkerFailures. */
  exchange(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    return this.withWorker((worker) => worker.request(req, options));
  }

  /**
   * One request that CRIU can answer on a kept worker (VERSION, FEATURE_CHECK): sent with
   * keep_open to the idle worker when there is one, else to a fresh one, which is then parked for
   * idleWorkerMs. A kept worker that has died meanwhile costs one retry on a fresh worker.
   */
  async exchangeKept(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    if (this.#idleWorkerMs <= 0 || this.#draining) return this.exchange(req, options);
    const kept = this.#takeIdle();
    const worker = kept ?? (await this.acquire());
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

  #park(worker: SwrkWorker): void {
    const timer = setTimeout(() => {
      if (this.#idle?.worker === worker) this.#idle = undefined;
      void worker.close();
    }, this.#idleWorkerMs);
    timer.unref();
    this.#idle = { worker, timer };
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
