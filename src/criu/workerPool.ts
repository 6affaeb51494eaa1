// Every `criu swrk` worker the gateway runs comes from here: started and registered in one place,
// started ahead of need and refilled in the background, reused when CRIU kept it open, limited in
// number, and waited for at shutdown.
//
// Callers ask for a worker (`acquire`) or for one exchange (`exchange`, `exchangeKept`) and never
// start one themselves.
//
// The limit: a call holds a slot from when it is granted one until its worker exits (or stops
// counting); at most `maxWorkers` slots are taken, and up to `maxQueued` calls wait for one. A
// worker no call holds (a warm one, or one CRIU kept open) holds no slot: it is an idle process
// blocked in recv, and it is a call, not a process, that the limit is about. So at most
// maxWorkers + warmWorkers workers exist, and a queued call never waits for a ready worker, only
// for a slot, which every running call gives back when its worker exits: nothing can deadlock.
//
// Warm workers: `criu swrk` reads its first request only after fork, exec and its own start-up, and
// Node's spawn blocks the event loop until the exec. So the pool keeps `warmWorkers` started ones
// waiting on their sockets (CRIU blocks in recv before reading anything), hands one to a call at
// once, and starts the next in the background, one every other event-loop turn: after that call's
// worker has exited while another is still ready, and never while calls queue for a kept worker,
// so that the spawns fall between calls (and after their answers) rather than into them.

import { closeFd, streamPair } from "./seqpacket.js";
import { type ExchangeOptions, SwrkWorker, WorkerFailure } from "./swrkWorker.js";
import { type CriuReq, CriuReqType, type CriuResp } from "./wire.js";

export interface WorkerPoolOptions {
  criuBin: string;
  /**
   * Workers in use by calls at once (a ready worker, warm or kept, does not count); a request for
   * one more waits its turn. Unlimited when absent.
   */
  maxWorkers?: number;
  /** Requests that may wait for a worker; one more fails at once (WorkerFailure "busy"). */
  maxQueued?: number;
  /**
   * How long a worker that answered a request with keep_open (VERSION, FEATURE_CHECK) is kept for
   * the next request when there are no warm workers; 0 keeps none. With warm workers, a kept
   * worker rejoins them instead.
   */
  idleWorkerMs?: number;
  /** How many started workers wait for a request; 0 starts each worker when a call needs it. */
  warmWorkers?: number;
  /** A warm worker unused this long is closed; the pool fills up again at the next call. */
  warmWorkerIdleMs?: number;
}

/** Requests after which CRIU's worker is as it was before (nothing set up for the request stays). */
const RECYCLABLE: ReadonlySet<CriuReqType> = new Set([CriuReqType.VERSION, CriuReqType.FEATURE_CHECK]);

interface Ready {
  worker: SwrkWorker;
  timer: NodeJS.Timeout;
}

export class WorkerPool {
  readonly #criuBin: string;
  readonly #idleWorkerMs: number;
  readonly #warmWorkers: number;
  readonly #warmWorkerIdleMs: number;
  readonly #maxWorkers: number;
  readonly #maxQueued: number;
  /** Slots taken: by workers calls hold, or granted to a call about to take one. */
  #slots = 0;
  /** Workers that hold a slot, until they exit, stop counting, or are given back. */
  readonly #holding = new Set<SwrkWorker>();
  /** Requests waiting for a slot, first come first served. */
  readonly #queue: { grant(): void }[] = [];
  /** Live workers by pid: shutdown waits for them, and dumps of them are refused. */
  readonly #workers = new Map<number, SwrkWorker>();
  /**
   * Warm workers' spare stream sockets: this end, whose other end the worker inherited as its fd 4,
   * for a post-copy dump's page server (acquireServing); closed when the worker exits. A worker
   * that answered a kept request (VERSION, FEATURE_CHECK) keeps its spare: CRIU left it as it was.
   */
  readonly #spares = new Map<SwrkWorker, number>();
  /** Started workers no call holds, oldest first: warm ones and kept ones. */
  readonly #ready: Ready[] = [];
  /** Calls (each holding a slot) waiting for a kept worker another call is about to give back. */
  readonly #keptWaiters: ((worker: SwrkWorker | undefined) => void)[] = [];
  /** Kept-worker exchanges under way: each gives its worker back when it succeeds. */
  #returning = 0;
  #refillScheduled = false;
  /** Operations holding refills back (holdRefills). */
  #refillHolds = 0;
  /** Warm workers that died unused since the last call; past one, refills wait for a call. */
  #crashedSinceCall = 0;
  #draining = false;

  constructor(options: WorkerPoolOptions) {
    this.#criuBin = options.criuBin;
    this.#idleWorkerMs = options.idleWorkerMs ?? 0;
    this.#warmWorkers = options.warmWorkers ?? 0;
    this.#warmWorkerIdleMs = options.warmWorkerIdleMs ?? 600_000;
    this.#maxWorkers = options.maxWorkers ?? Number.POSITIVE_INFINITY;
    this.#maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
    this.#scheduleRefill();
  }

  /**
   * A worker for the caller once a slot is free (the request waits in the queue until then:
   * WorkerFailure "busy" when the queue is full, "aborted" when `signal` fires first), warm when
   * one is ready, else freshly started; registered until it is reaped. The caller owns it and
   * must `close()` it. A worker that cannot start reports why on its first request
   * (WorkerFailure "spawn").
   */
  async acquire(signal?: AbortSignal): Promise<SwrkWorker> {
    await this.#takeSlot(signal);
    this.#crashedSinceCall = 0;
    const worker = this.#hold(() => this.#takeReady() ?? this.#start());
    // A spawn holds the event loop for milliseconds, and this call's CRIU is about to need it for
    // its first callback: while another warm worker is ready, refill once this one has exited
    // (and no operation holds refills back: holdRefills).
    if (this.#ready.length === 0) this.#scheduleRefill();
    else void worker.exited.then(() => this.#scheduleRefill());
    return worker;
  }

  /**
   * A worker like `acquire`'s whose fd 4 is a stream socket, with this end of it (the caller's to
   * close): for a dump whose page server serves on that socket. A warm worker started with one
   * when there is such a worker ready, else a fresh one.
   */
  async acquireServing(signal?: AbortSignal): Promise<{ worker: SwrkWorker; stream: number }> {
    await this.#takeSlot(signal);
    this.#crashedSinceCall = 0;
    const worker = this.#hold(() => this.#takeReady(true) ?? this.#startWithSpare());
    if (this.#ready.length === 0) this.#scheduleRefill();
    else void worker.exited.then(() => this.#scheduleRefill());
    const stream = this.#spares.get(worker);
    this.#spares.delete(worker);
    if (stream === undefined) throw new Error("a serving worker started without its stream socket");
    return { worker, stream };
  }

  /**
   * The worker stays the caller's and keeps running, but gives its slot back: for a worker that
   * will mostly wait (a page server waiting for a dump) and must not keep others from running.
   */
  stopCounting(worker: SwrkWorker): void {
    this.#release(worker);
  }

  /** Runs `use` with a worker and always closes (and so reaps) it afterwards. */
  async withWorker<T>(use: (worker: SwrkWorker) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const worker = await this.acquire(signal);
    try {
      return await use(worker);
    } finally {
      await worker.close();
    }
  }

  /** One request on a worker of its own, which is always reaped. Failures are WorkerFailures. */
  exchange(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    return this.withWorker((worker) => worker.request(req, options), options.signal);
  }

  /**
   * One request that CRIU can answer on a kept worker (VERSION, FEATURE_CHECK), sent with
   * keep_open once a slot is free: on a ready worker, else on one another such request is about
   * to give back, else on a fresh one. Afterwards the worker is ready again. A reused worker that
   * has died meanwhile costs one retry on a fresh worker.
   */
  async exchangeKept(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    if (this.#readyLimit() === 0 || this.#draining) return this.exchange(req, options);
    await this.#takeSlot(options.signal);
    this.#crashedSinceCall = 0;
    const reused = this.#takeReady() ?? (await this.#waitForKept());
    // The slot now belongs to the worker (a reused one, or one started here).
    const worker = this.#hold(() => reused ?? this.#start());
    this.#returning++;
    let resp: CriuResp;
    try {
      resp = await worker.request({ ...req, keepOpen: true }, options);
    } catch (err) {
      this.#returning--;
      this.#wakeKeptWaiterIfNoneReturning();
      await worker.close();
      if (reused && err instanceof WorkerFailure && err.kind === "ended") return this.exchange(req, options);
      throw err;
    } finally {
      this.#scheduleRefill();
    }
    this.#returning--;
    if (resp.success && RECYCLABLE.has(req.type)) this.#giveBack(worker);
    else {
      this.#wakeKeptWaiterIfNoneReturning();
      await worker.close();
    }
    return resp;
  }

  /**
   * Holds refills back until the returned function is called: for an operation with work of its
   * own after its worker has exited (publishing a dump), in the middle of which a spawn, holding
   * the event loop for milliseconds, was measured adding ~3 ms to the reply. A refill that came
   * due meanwhile runs once no operation holds them.
   */
  holdRefills(): () => void {
    this.#refillHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#refillHolds--;
      if (this.#refillHolds === 0) this.#scheduleRefill();
    };
  }

  /** Whether `pid` is one of the pool's workers, ready or in use. */
  has(pid: number): boolean {
    return this.#workers.has(pid);
  }

  /** Pids of the workers running now, ready ones included. */
  pids(): number[] {
    return [...this.#workers.keys()];
  }

  /** Pids of the started workers waiting for a call, oldest first. */
  readyPids(): number[] {
    return this.#ready.map((r) => r.worker.pid).filter((pid) => pid !== undefined);
  }

  /** The pid of a worker waiting for the next request, if any (the next call's worker). */
  idlePid(): number | undefined {
    return this.#ready[0]?.worker.pid;
  }

  /**
   * Keeps and starts no worker from now on, closes the ready ones and waits until every worker
   * has exited. Workers in use are the business of their callers, who were told to stop
   * (cancelled) before this is called.
   */
  async drain(): Promise<void> {
    this.#draining = true;
    for (const wake of this.#keptWaiters.splice(0)) wake(undefined);
    const ready = this.#ready.splice(0);
    for (const r of ready) clearTimeout(r.timer);
    await Promise.all(ready.map((r) => r.worker.close()));
    await Promise.all([...this.#workers.values()].map((w) => w.exited));
  }

  /** Slots taken (workers in use; ready ones aside) and requests waiting for one. */
  load(): { running: number; waiting: number } {
    return { running: this.#slots, waiting: this.#queue.length };
  }

  /** How many workers may wait unused: the warm ones, or the one kept for idleWorkerMs. */
  #readyLimit(): number {
    if (this.#warmWorkers > 0) return this.#warmWorkers;
    return this.#idleWorkerMs > 0 ? 1 : 0;
  }

  #start(inherit?: readonly number[]): SwrkWorker {
    const worker = SwrkWorker.start({
      criuBin: this.#criuBin,
      inherit,
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

  /** A worker gives its slot back (when it exits, stops counting, or is given back). */
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

  /**
   * The oldest ready worker still alive (with a spare stream socket, when `spare`), taken out of
   * the ready list.
   */
  #takeReady(spare = false): SwrkWorker | undefined {
    if (spare) {
      const at = this.#ready.findIndex(
        (r) => this.#spares.has(r.worker) && this.#workers.has(r.worker.pid ?? -1),
      );
      if (at < 0) return undefined;
      const [r] = this.#ready.splice(at, 1);
      if (r) clearTimeout(r.timer);
      return r?.worker;
    }
    for (let r = this.#ready.shift(); r; r = this.#ready.shift()) {
      clearTimeout(r.timer);
      if (this.#workers.has(r.worker.pid ?? -1)) return r.worker;
    }
    return undefined;
  }

  /** A worker that inherits one end of a fresh stream pair as its fd 4; the pool keeps the other. */
  #startWithSpare(): SwrkWorker {
    const { ours, theirs } = streamPair();
    let worker: SwrkWorker;
    try {
      worker = this.#start([theirs]);
    } catch (err) {
      closeFd(ours);
      throw err;
    } finally {
      closeFd(theirs);
    }
    this.#spares.set(worker, ours);
    void worker.exited.then(() => this.#dropSpare(worker));
    return worker;
  }

  /** Closes the worker's spare stream socket, if it still has one: nobody will serve on it. */
  #dropSpare(worker: SwrkWorker): void {
    const spare = this.#spares.get(worker);
    if (spare === undefined) return;
    this.#spares.delete(worker);
    closeFd(spare);
  }

  /**
   * Waits for a kept worker another call is about to give back; undefined when none will come.
   * Each worker given back goes to the next waiter, who gives it back in turn, so a burst of such
   * calls runs on the workers at hand (a kept VERSION takes well under a millisecond) instead of
   * blocking the event loop for a spawn each. The waiter holds a slot already and the exchanges
   * it waits for run (they hold theirs): it never waits on the queue.
   */
  #waitForKept(): Promise<SwrkWorker | undefined> {
    if (this.#returning === 0) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#keptWaiters.push(resolve));
  }

  /** When the last exchange that would give a worker back did not, the next waiter starts one. */
  #wakeKeptWaiterIfNoneReturning(): void {
    if (this.#returning === 0) this.#keptWaiters.shift()?.(undefined);
  }

  /**
   * A worker CRIU kept after a request gives its slot back, and goes to the next waiting call
   * (under that call's slot), else to the ready list, else is closed.
   */
  #giveBack(worker: SwrkWorker): void {
    this.#release(worker);
    const waiter = this.#keptWaiters.shift();
    if (waiter) {
      waiter(worker);
      return;
    }
    if (this.#draining || this.#ready.length >= this.#readyLimit()) {
      void worker.close();
      return;
    }
    this.#park(worker);
  }

  /** Adds a worker to the ready list, closed once unused for the idle limit. */
  #park(worker: SwrkWorker): void {
    const idleMs = this.#warmWorkers > 0 ? this.#warmWorkerIdleMs : this.#idleWorkerMs;
    const entry: Ready = {
      worker,
      timer: setTimeout(() => {
        if (this.#remove(entry)) void worker.close();
      }, idleMs),
    };
    entry.timer.unref();
    this.#ready.push(entry);
    void worker.exited.then(() => {
      // Died while waiting (not closed by the pool, which takes it out first): replace it.
      if (!this.#remove(entry)) return;
      this.#crashedSinceCall++;
      this.#scheduleRefill();
    });
  }

  #remove(entry: Ready): boolean {
    const i = this.#ready.indexOf(entry);
    if (i < 0) return false;
    this.#ready.splice(i, 1);
    clearTimeout(entry.timer);
    return true;
  }

  /**
   * Starts warm workers up to `warmWorkers`, one every other event-loop turn, in the background.
   * Waits while calls queue for a kept worker (they are served first), while an operation holds
   * refills back, and after a second warm worker died unused until the next call (a CRIU that
   * cannot start is not restarted in a loop).
   *
   * Each start waits a turn more than it needs: an operation that let it go is answering its call
   * in this turn, and grpc-js sends a unary answer's trailers, which end the call for its client,
   * a turn after its message. A spawn before them (the event loop held for milliseconds, the new
   * CRIU taking a core) was measured delaying the end of a small dump's call by ~4 ms.
   */
  #scheduleRefill(): void {
    if (this.#refillScheduled || this.#draining || this.#warmWorkers === 0) return;
    this.#refillScheduled = true;
    setImmediate(() => setImmediate(() => this.#refill()));
  }

  #refill(): void {
    this.#refillScheduled = false;
    if (this.#draining || this.#keptWaiters.length > 0 || this.#crashedSinceCall > 1) return;
    // Released holds schedule the refill again.
    if (this.#refillHolds > 0) return;
    // Workers out on kept requests come back to the ready list.
    if (this.#ready.length + this.#returning >= this.#warmWorkers) return;
    const worker = this.#startWithSpare();
    // Started or not: a worker that could not be spawned says so to the call that takes it,
    // and is not kept waiting.
    if (worker.pid === undefined) return;
    this.#park(worker);
    this.#scheduleRefill();
  }
}
