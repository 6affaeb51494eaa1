// What every operation is given: the gateway's dependencies once, and per call who is asking.

import type { NotifyAnswer } from "../../criu/swrkWorker.js";
import type { OptionClass } from "../criuOptions.js";
import type { EventBus } from "../eventBus.js";
import type { HostReaders } from "../hostDoctor.js";
import type { ImageStore } from "../imageStore.js";
import type { OperationGuard } from "../operationGuard.js";

export type { NotifyAnswer };

export interface OperationsDeps {
  criuBin: string;
  store: ImageStore;
  events: EventBus;
  /** Lines of CRIU's log returned with a failure. */
  logTailLines: number;
  /** How long a cancelled dump or restore may run on before its worker is killed. */
  vetoGraceMs: number;
  /** Option classes of calls that carry no guard (the gateway's own requests). */
  allowedOptionClasses: ReadonlySet<OptionClass>;
  /**
   * How long a worker that answered VERSION or FEATURE_CHECK is kept (CRIU's keep_open) for the
   * next such request, which then skips a fork and exec; 0 starts a fresh worker every time.
   */
  idleWorkerMs?: number;
  /** Workers started ahead of need (src/criu/workerPool.ts); 0 starts each when needed. */
  warmWorkers?: number;
  /** How long warm workers wait unused before they are closed. */
  warmWorkerIdleMs?: number;
  /** Where host preconditions (hostDoctor.ts) are read; the real host when absent. */
  hostReaders?: HostReaders;
  /** CRIU's log level for requests whose options set none (CRIU's default, 2, when absent). */
  criuLogLevel?: number;
  /** CRIU workers run at once; more operations wait (unlimited when absent). */
  maxConcurrentOperations?: number;
  /** Operations that may wait for a worker; more get RESOURCE_EXHAUSTED (unlimited when absent). */
  maxQueuedOperations?: number;
  /**
   * Told when a dump passes the moments that decide what a crash leaves behind; awaited. For
   * observers, and for the fault tests that stop the gateway exactly there.
   */
  onDumpPhase?(phase: DumpPhase, checkpointId: string): void | Promise<void>;
}

/**
 * "secured": the gateway's records are durable and post-dump is about to be answered with
 * success (for a dump without leave_running, its point of no return). "answered": CRIU has
 * answered the dump with success; the checkpoint is about to be published.
 */
export type DumpPhase = "secured" | "answered";

/** A callback put to an interactive caller. */
export interface CallbackQuestion {
  operationId: string;
  sequence: number;
  script: string;
  pid: number | undefined;
  fdReceived: boolean;
  timeoutMs: number;
}

/** Who is asking, and how to reach them. */
export interface OperationContext {
  /** The caller, for events and logs (the gRPC peer). */
  caller: string;
  /** Aborted when the caller goes away; a dump or restore is then vetoed at CRIU's next callback. */
  signal?: AbortSignal;
  /** Set by a Session: callbacks go to the caller when its options ask for notify_scripts. */
  callbacks?: {
    timeoutMs: number;
    ask(question: CallbackQuestion, signal: AbortSignal): Promise<NotifyAnswer>;
  };
  /**
   * What the caller's authorization adds. Absent: the gateway's own request, with the default
   * option classes (OperationsDeps.allowedOptionClasses), a dumped tree read and kept unchecked,
   * and restores unconfined.
   */
  guard?: OperationGuard;
  /** Told the operation's id before anything else happens. */
  onStarted?(operationId: string): void;
  /** A page server outlives the call that started it: told once it has ended, however it ended. */
  onServerEnded?(): void;
}
