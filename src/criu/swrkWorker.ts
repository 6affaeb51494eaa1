// One `criu swrk` process and the request/response exchange with it.
//
// Lifecycle: make a SOCK_SEQPACKET pair, start `criu swrk 3` with the other end as its fd 3, send
// criu_req datagrams and read criu_resp datagrams, answering NOTIFY callbacks on the way, then
// close our end (CRIU exits when it reads end-of-stream) and wait for the process. Every path,
// errors and cancellation included, ends with the process reaped: `close()` kills it if it lingers.
import { type ChildProcess, spawn } from "node:child_process";
import { inSpan } from "../observability/tracing.js";
import { closeFd, type Datagram, SeqpacketSocket, seqpacketPair } from "./seqpacket.js";
import {
  type CriuReq,
  CriuReqType,
  type CriuResp,
  decodeResponse,
  encodeRequest,
  requestTypeName,
} from "./wire.js";

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type WorkerFailureKind =
  /** The criu binary could not be started. */
  | "spawn"
  /** The worker ended (exit, crash, closed socket) before it answered. */
  | "ended"
  /** The worker answered something that is not a criu_resp, or not the answer expected. */
  | "protocol"
  /** The caller gave up (AbortSignal) and the exchange was stopped. */
  | "aborted"
  /** The request does not fit in one datagram of the socket (EMSGSIZE). */
  | "too-large"
  /** No worker was started: as many run as allowed, and the queue for one is full (WorkerPool). */
  | "busy";

/** The exchange with the worker failed; CRIU itself gave no answer. */
export class WorkerFailure extends Error {
  override readonly name = "WorkerFailure";
  constructor(
    readonly kind: WorkerFailureKind,
    message: string,
    readonly exit: WorkerExit | undefined,
    readonly outputTail: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface NotifyEvent {
  /** The action-script name, e.g. "post-dump". */
  script: string;
  pid: number | undefined;
  /**
   * Descriptors CRIU passed with the callback (orphan-pts-master passes the pty master). The worker
   * closes them after the handler returns; a handler that wants one must dup it.
   */
  fds: readonly number[];
}

/**
 * The answer to one callback: success lets CRIU go on, failure makes it fail and roll back.
 * `external` (query-ext-files only) names external resources for CRIU to add.
 */
export interface NotifyAnswer {
  success: boolean;
  external?: readonly string[];
}

export type NotifyHandler = (event: NotifyEvent) => boolean | NotifyAnswer | Promise<boolean | NotifyAnswer>;

export interface ExchangeOptions {
  /** Called for each NOTIFY the worker sends; when absent every callback is answered with success. */
  onNotify?: NotifyHandler;
  signal?: AbortSignal;
  /**
   * What an abort does. "kill" stops the worker at once: right for requests that freeze nothing
   * (VERSION, CHECK, FEATURE_CHECK). "veto" answers the next callback with failure so CRIU rolls
   * back and resumes the tasks itself; the worker is killed only if no callback comes within
   * `vetoGraceMs`. Dumps and restores use "veto" with notify_scripts on.
   */
  abortMode?: "kill" | "veto";
  vetoGraceMs?: number;
}

export interface SwrkWorkerOptions {
  criuBin: string;
  /** How long close() waits for the worker to exit after end-of-stream before SIGKILL. */
  exitGraceMs?: number;
  /**
   * Descriptors the worker inherits, as its fds 4, 5, ... in this order (a request's options name
   * them by those numbers); the caller keeps its own copies and closes them.
   */
  inherit?: readonly number[];
  /** Called with the worker's pid once it runs, and again with the pid when it is gone. */
  onSpawn?: (pid: number) => void;
  onReaped?: (pid: number) => void;
}

const OUTPUT_TAIL_BYTES = 16 * 1024;
/** How long an "ended" failure waits for the rest of the worker's output after its exit. */
const OUTPUT_DRAIN_MS = 500;

export class SwrkWorker {
  readonly #child: ChildProcess;
  readonly #socket: SeqpacketSocket;
  readonly #exited: Promise<WorkerExit>;
  readonly #outputClosed: Promise<void>;
  readonly #exitGraceMs: number;
  #exit: WorkerExit | undefined;
  #spawnError: Error | undefined;
  #output = "";
  #inbox: Datagram[] = [];
  #ended: { errno: number } | undefined;
  #wake: (() => void) | undefined;
  #closing: Promise<WorkerExit> | undefined;

  private constructor(options: SwrkWorkerOptions) {
    this.#exitGraceMs = options.exitGraceMs ?? 5_000;
    const { ours, theirs } = seqpacketPair();
    this.#socket = new SeqpacketSocket(ours, {
      onMessage: (datagram) => {
        this.#inbox.push(datagram);
        this.#poke();
      },
      onEnd: (errno) => {
        this.#ended = { errno };
        this.#poke();
      },
    });
    try {
      // The stdio entry makes libuv dup2 `theirs` onto fd 3 in the child, clearing close-on-exec
      // there only: no other child of the gateway can inherit this worker's socket.
      this.#child = spawn(options.criuBin, ["swrk", "3"], {
        stdio: ["ignore", "pipe", "pipe", theirs, ...(options.inherit ?? [])],
        // Own process group: a Ctrl-C meant for the gateway must not kill CRIU mid-dump.
        detached: true,
      });
    } finally {
      closeFd(theirs);
    }
    const child = this.#child;
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    // 'close' comes once stdout and stderr have ended, which may be after 'exit'.
    this.#outputClosed = new Promise<void>((resolve) => child.once("close", () => resolve()));
    this.#exited = new Promise<WorkerExit>((resolve) => {
      child.once("error", (err) => {
        this.#spawnError = err;
        if (child.pid === undefined) {
          this.#exit = { code: null, signal: null };
          resolve(this.#exit);
          this.#poke();
        }
      });
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        if (child.pid !== undefined) options.onReaped?.(child.pid);
        resolve(this.#exit);
        this.#poke();
      });
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
  }

  /** Starts `criu swrk`. Spawn failures surface on the first request as a WorkerFailure("spawn"). */
  static start(options: SwrkWorkerOptions): SwrkWorker {
    return new SwrkWorker(options);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Resolves when the process has exited and been reaped. */
  get exited(): Promise<WorkerExit> {
    return this.#exited;
  }

  /** What the worker printed on stdout and stderr, the last 16 KiB. */
  get outputTail(): string {
    return this.#output;
  }

  /**
   * Sends one request and returns CRIU's answer to it, answering NOTIFY callbacks in between.
   * A PRE_DUMP answer is returned like any other; the caller may then send the next request.
   */
  /** Sends one request and waits for CRIU's answer, answering its callbacks on the way. */
  request(req: CriuReq, options: ExchangeOptions = {}): Promise<CriuResp> {
    const typeName = requestTypeName(req.type);
    // A span per CRIU request: the RPC's trace shows where a slow call spent its time.
    return inSpan(`criu ${typeName}`, { "criu.request": typeName, "criu.worker.pid": this.pid ?? 0 }, () =>
      this.#request(req, options),
    );
  }

  async #request(req: CriuReq, options: ExchangeOptions): Promise<CriuResp> {
    const { signal, onNotify, abortMode = "kill", vetoGraceMs = 30_000 } = options;
    const typeName = requestTypeName(req.type);
    if (signal?.aborted) throw this.#failure("aborted", `${typeName} cancelled before it was sent`);
    if (req.keepOpen && !KEEP_OPEN_TYPES.has(req.type)) {
      // chk_keepopen_req in cr-service.c: CRIU would exit without a word.
      throw this.#failure(
        "protocol",
        `CRIU does not keep a worker open after ${typeName}; send it without keep_open`,
      );
    }
    if (this.#child.pid === undefined) {
      // spawn() failed; the reason arrives with the 'error' event on the next tick. Sending now
      // would only report EPIPE from a socket nobody holds.
      await this.#exited;
      throw this.#failure(
        "spawn",
        `cannot start CRIU: ${this.#spawnError?.message ?? "spawn failed"}`,
        this.#spawnError,
      );
    }
    this.#send(encodeRequest(req), typeName);

    let vetoTimer: NodeJS.Timeout | undefined;
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      if (abortMode === "kill") {
        this.#kill();
      } else {
        // CRIU is between callbacks; if it never reaches another one, stop it the hard way.
        vetoTimer = setTimeout(() => this.#kill(), vetoGraceMs);
        vetoTimer.unref();
      }
      this.#poke();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const datagram = await this.#next(() => aborted && abortMode === "kill");
        if (datagram === undefined) {
          if (aborted) throw this.#failure("aborted", `${typeName} cancelled; the worker was stopped`);
          throw await this.#endedFailure(typeName);
        }
        let resp: CriuResp;
        try {
          resp = decodeResponse(datagram.data);
        } catch (cause) {
          datagram.fds.forEach(safeClose);
          this.#kill();
          throw this.#failure("protocol", `the worker answered ${typeName} with a malformed message`, cause);
        }
        if (resp.type === CriuReqType.NOTIFY) {
          const event: NotifyEvent = {
            script: resp.notify?.script ?? "",
            pid: resp.notify?.pid,
            fds: datagram.fds,
          };
          let answer: NotifyAnswer = { success: false };
          try {
            if (!aborted) {
              const given = onNotify ? await onNotify(event) : true;
              answer = typeof given === "boolean" ? { success: given } : given;
            }
          } finally {
            datagram.fds.forEach(safeClose);
          }
          // A veto after an abort is the safe point: CRIU rolls back and resumes the tasks.
          const success = answer.success && !aborted;
          const reply: CriuReq = { type: CriuReqType.NOTIFY, notifySuccess: success };
          if (success && answer.external && answer.external.length > 0) {
            // criu_opts.images_dir_fd is required on the wire; CRIU reads only `external` here.
            reply.opts = { imagesDirFd: -1, external: [...answer.external] } as CriuReq["opts"];
          }
          this.#send(encodeRequest(reply), "NOTIFY");
          continue;
        }
        datagram.fds.forEach(safeClose);
        // CRIU answers a request it cannot serve with an EMPTY-typed failure (send_criu_err).
        const isErrorAnswer = resp.type === CriuReqType.EMPTY && !resp.success;
        if (resp.type !== answerTypeOf(req.type) && !isErrorAnswer) {
          this.#kill();
          throw this.#failure(
            "protocol",
            `the worker answered ${typeName} with a ${requestTypeName(resp.type)} response`,
          );
        }
        return resp;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (vetoTimer) clearTimeout(vetoTimer);
    }
  }

  /**
   * Ends the exchange: closes our socket (CRIU exits on end-of-stream), waits for the process, and
   * kills it if it has not exited within the grace period. Idempotent; never throws.
   */
  close(): Promise<WorkerExit> {
    if (!this.#closing) {
      this.#socket.close();
      this.#inbox.forEach((d) => {
        d.fds.forEach(safeClose);
      });
      this.#inbox = [];
      if (this.#exit) {
        this.#closing = this.#exited;
      } else {
        const timer = setTimeout(() => this.#kill(), this.#exitGraceMs);
        this.#closing = this.#exited.finally(() => clearTimeout(timer));
      }
    }
    return this.#closing;
  }

  /** Kills the worker at once (SIGKILL) and waits for it. */
  async kill(): Promise<WorkerExit> {
    this.#kill();
    return this.close();
  }

  #kill(): void {
    if (this.#exit || this.#child.pid === undefined) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone; the exit event reports it.
    }
  }

  #send(bytes: Uint8Array, typeName: string): void {
    if (this.#spawnError && this.#child.pid === undefined) {
      throw this.#failure("spawn", `cannot start CRIU: ${this.#spawnError.message}`, this.#spawnError);
    }
    try {
      this.#socket.send(bytes);
    } catch (cause) {
      if ((cause as { code?: unknown }).code === "EMSGSIZE") {
        throw this.#failure(
          "too-large",
          `the ${typeName} request (${bytes.length} bytes) is larger than CRIU's socket takes in one message`,
          cause,
        );
      }
      throw this.#failure("ended", `cannot send ${typeName} to the worker: it is gone`, cause);
    }
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next datagram, or undefined once the stream has ended (or `stop()` says to give up). */
  async #next(stop: () => boolean): Promise<Datagram | undefined> {
    for (;;) {
      const datagram = this.#inbox.shift();
      if (datagram) return datagram;
      if (this.#ended || stop() || (this.#spawnError && this.#child.pid === undefined)) return undefined;
      if (this.#exit && !this.#ended) {
        // The worker is gone, so whatever it wrote is already in the socket buffer: read it now.
        // (End-of-stream may never come if a process it forked still holds the socket.)
        this.#socket.drain();
        if (this.#inbox.length > 0 || this.#ended) continue;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  async #endedFailure(typeName: string): Promise<WorkerFailure> {
    if (this.#spawnError && this.#child.pid === undefined) {
      return this.#failure("spawn", `cannot start CRIU: ${this.#spawnError.message}`, this.#spawnError);
    }
    // Wait for the exit status so the error can say how the worker ended.
    if (!this.#exit) {
      const timer = setTimeout(() => this.#kill(), this.#exitGraceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    // 'exit' can come before the last of the worker's output has been read, and that is where CRIU
    // says why it gave up. Wait for the pipes to end, briefly: a grandchild may hold them open.
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#outputClosed,
      new Promise<void>((resolve) => {
        drainTimer = setTimeout(resolve, OUTPUT_DRAIN_MS);
      }),
    ]);
    clearTimeout(drainTimer);
    return this.#failure(
      "ended",
      `the worker ended before answering ${typeName} (${describeExit(this.#exit)})`,
    );
  }

  #failure(kind: WorkerFailureKind, message: string, cause?: unknown): WorkerFailure {
    return new WorkerFailure(
      kind,
      message,
      this.#exit,
      this.#output,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * The requests after which CRIU keeps the worker for another when keep_open is set
 * (chk_keepopen_req in cr-service.c); for any other it exits without answering.
 */
export const KEEP_OPEN_TYPES: ReadonlySet<CriuReqType> = new Set([
  CriuReqType.PAGE_SERVER,
  CriuReqType.PAGE_SERVER_CHLD,
  CriuReqType.CPUINFO_DUMP,
  CriuReqType.CPUINFO_CHECK,
  CriuReqType.FEATURE_CHECK,
  CriuReqType.VERSION,
]);

/** The type CRIU gives its answer to a request: its own, but for PAGE_SERVER_CHLD (cr-service.c). */
export function answerTypeOf(type: CriuReqType): CriuReqType {
  return type === CriuReqType.PAGE_SERVER_CHLD ? CriuReqType.PAGE_SERVER : type;
}

export function describeExit(exit: WorkerExit | undefined): string {
  if (!exit) return "still running";
  if (exit.signal) return `killed by ${exit.signal}`;
  if (exit.code === null) return "did not start";
  return `exit status ${exit.code}`;
}

function safeClose(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // Closing a received descriptor can only fail if it is already closed.
  }
}
