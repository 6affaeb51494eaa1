// The gateway's operations: each runs one `criu swrk` worker, checks its input first, and turns
// every outcome into a result or a GatewayError. No gRPC here; no socket details either.

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import type { CriuOptions, DumpStatistics, RestoreStatistics } from "../../gen/criu/gateway/v1/gateway.js";
import {
  CPUINFO_FILE,
  decodeStatsImage,
  INVENTORY_FILE,
  inventoryRecordsDumpTime,
  STATS_DUMP_FILE,
  STATS_RESTORE_FILE,
} from "../criu/images.js";
import {
  type ExchangeOptions,
  type NotifyAnswer,
  type NotifyEvent,
  SwrkWorker,
  WorkerFailure,
} from "../criu/swrkWorker.js";
import { type CriuReq, CriuReqType, type CriuResp, requestTypeName } from "../criu/wire.js";
import { criuRefused, type FailureContext, lastLines, workerFailed } from "./criuFailure.js";
import { checkOptionClasses, type OptionClass, toCriuOpts, validateOptionValues } from "./criuOptions.js";
import { type ErrorCode, GatewayError, invalidArgument, permissionDenied } from "./errors.js";
import type { AnsweredBy, EventBus, EventPayload, OperationKind } from "./eventBus.js";
import {
  type CheckpointInfo,
  CPUINFO_CHECK_LOG,
  CPUINFO_DUMP_LOG,
  DUMP_LOG,
  type Durability,
  type ImageFileData,
  ImageStore,
  type LogText,
  PAGE_SERVER_LOG,
  PRE_DUMP_LOG,
  RESTORE_LOG,
} from "./imageStore.js";
import { type ProcessRecord, processTree } from "./processTree.js";
import { checkImagesForConfinedRestore, checkRestoredTree } from "./restoreConfinement.js";
import { decodeWaitStatus, type WaitOutcome } from "./waitStatus.js";

/** Which of CRIU's logs of a checkpoint; "creation" is the log of the operation that made it. */
export type LogKind =
  | "creation"
  | "dump"
  | "restore"
  | "pre-dump"
  | "cpuinfo-dump"
  | "cpuinfo-check"
  | "page-server";

const LOG_FILE: Record<Exclude<LogKind, "creation">, string> = {
  dump: DUMP_LOG,
  restore: RESTORE_LOG,
  "pre-dump": PRE_DUMP_LOG,
  "cpuinfo-dump": CPUINFO_DUMP_LOG,
  "cpuinfo-check": CPUINFO_CHECK_LOG,
  "page-server": PAGE_SERVER_LOG,
};

/**
 * The most of a log GetCheckpointLog returns: just under 4 MiB, so that the answer fits the 4 MiB
 * message limit gRPC clients apply by default.
 */
export const LOG_MAX_BYTES = 4 * 1024 * 1024 - 16 * 1024;

export interface CriuVersion {
  majorNumber: number;
  minorNumber: number;
  sublevel: number | undefined;
  extra: number | undefined;
  gitid: string;
  name: string;
}

export interface Features {
  memTrack: boolean;
  lazyPages: boolean;
  pidfdStore: boolean;
}

export interface OperationsDeps {
  criuBin: string;
  store: ImageStore;
  events: EventBus;
  /** Lines of CRIU's log returned with a failure. */
  logTailLines: number;
  /** How long a cancelled dump or restore may run on before its worker is killed. */
  vetoGraceMs: number;
  /** Option classes callers may use (until per-caller policy exists, one set for all). */
  allowedOptionClasses: ReadonlySet<OptionClass>;
  /**
   * How long a worker that answered VERSION or FEATURE_CHECK is kept (CRIU's keep_open) for the
   * next such request, which then skips a fork and exec; 0 starts a fresh worker every time.
   */
  idleWorkerMs?: number;
}

export interface DumpInput {
  checkpointId: string;
  parentCheckpointId: string | undefined;
  options: CriuOptions | undefined;
  /** Whether the reply waits for the images to be on disk; "fsync" when not given. */
  durability?: Durability;
}

export interface RestoreInput {
  checkpointId: string;
  options: CriuOptions | undefined;
}

export interface DumpResult {
  checkpoint: CheckpointInfo;
  restored: boolean;
  statistics: DumpStatistics | undefined;
}

export interface RestoreResult {
  pid: number;
  statistics: RestoreStatistics | undefined;
}

export interface PageServerInput {
  checkpointId: string;
  /** An IP address to listen on; empty for all. */
  address: string;
  /** 0 lets the kernel choose. */
  port: number;
  options: CriuOptions | undefined;
}

/** A page server the gateway runs: a child of a kept CRIU worker. */
export interface PageServerInfo {
  checkpointId: string;
  pid: number;
  address: string;
  port: number;
  startTime: Date;
}

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
  /** Option classes this caller may use; the gateway's default set when absent. */
  optionClasses?: ReadonlySet<OptionClass>;
  /**
   * Reads the tree a dump froze, at CRIU's post-dump callback (processes stopped, images written,
   * nothing published yet), and throws to refuse it: the dump is then vetoed and rolled back.
   * What it returns is kept with the checkpoint. Without it the tree is read and kept unchecked.
   */
  frozenTree?: (rootPid: number) => Promise<ProcessRecord[]>;
  /**
   * Restores on this caller's behalf are confined (restoreConfinement.ts): checked on the images
   * before CRIU starts, and on the re-created tree at CRIU's post-restore callback. For callers
   * who are not administrators.
   */
  confinedRestore?: boolean;
  /** Told the operation's id before anything else happens. */
  onStarted?(operationId: string): void;
  /** A page server outlives the call that started it: told once it has ended, however it ended. */
  onServerEnded?(): void;
}

/** Checks a CRIU callback (script name, and the root pid where CRIU gives one); throws to veto it. */
type CallbackGate = (script: string, pid: number | undefined) => Promise<void>;

export type CriuOperations = ReturnType<typeof createCriuOperations>;

let operationCounter = 0;

function newOperationId(): string {
  operationCounter++;
  return `op-${operationCounter}-${randomBytes(4).toString("hex")}`;
}

export function createCriuOperations(deps: OperationsDeps) {
  const { store } = deps;
  /** Live workers by pid: dumps of them are refused, and shutdown waits for them. */
  const workers = new Map<number, SwrkWorker>();
  let cachedVersion: CriuVersion | undefined;
  let startupAncestors: Promise<Set<number>> | undefined;
  /** Kernel features do not change while the gateway runs: asked once, when first needed. */
  let cachedFeatures: Promise<Features> | undefined;

  /** At most one worker kept open after a VERSION or FEATURE_CHECK, waiting for the next. */
  let idle: { worker: SwrkWorker; timer: NodeJS.Timeout } | undefined;
  let draining = false;

  function takeIdle(): SwrkWorker | undefined {
    const kept = idle;
    idle = undefined;
    if (kept) clearTimeout(kept.timer);
    return kept?.worker;
  }

  function startWorker(): SwrkWorker {
    const worker = SwrkWorker.start({ criuBin: deps.criuBin, onReaped: (pid) => workers.delete(pid) });
    if (worker.pid !== undefined) workers.set(worker.pid, worker);
    return worker;
  }

  /**
   * VERSION and FEATURE_CHECK on a kept worker when there is one, with keep_open so that CRIU
   * keeps it again; it is parked for idleWorkerMs, then closed. A kept worker that has died
   * meanwhile costs one retry on a fresh worker.
   */
  async function exchangeReusable(
    req: CriuReq,
    options: ExchangeOptions,
    context: FailureContext,
  ): Promise<CriuResp> {
    const keepMs = deps.idleWorkerMs ?? 0;
    if (keepMs <= 0 || draining) return exchange(req, options, context);
    const kept = takeIdle();
    const worker = kept ?? startWorker();
    let resp: CriuResp;
    try {
      resp = await worker.request({ ...req, keepOpen: true }, options);
    } catch (err) {
      await worker.close();
      if (kept && err instanceof WorkerFailure && err.kind === "ended")
        return exchange(req, options, context);
      if (err instanceof WorkerFailure) throw workerFailed(err, requestTypeName(req.type), context);
      throw err;
    }
    if (!resp.success || draining || idle) {
      await worker.close();
    } else {
      const timer = setTimeout(() => {
        if (idle?.worker === worker) idle = undefined;
        void worker.close();
      }, keepMs);
      timer.unref();
      idle = { worker, timer };
      // Gone on its own: nothing to reuse.
      void worker.exited.then(() => {
        if (idle?.worker === worker) takeIdle();
      });
    }
    return resp;
  }

  /** Runs one request on a fresh worker and always reaps it. */
  async function exchange(
    req: CriuReq,
    options: ExchangeOptions,
    context: FailureContext,
  ): Promise<CriuResp> {
    const worker = SwrkWorker.start({ criuBin: deps.criuBin, onReaped: (pid) => workers.delete(pid) });
    if (worker.pid !== undefined) workers.set(worker.pid, worker);
    try {
      return await worker.request(req, options);
    } catch (err) {
      if (err instanceof WorkerFailure) throw workerFailed(err, requestTypeName(req.type), context);
      throw err;
    } finally {
      await worker.close();
    }
  }

  /**
   * Runs one operation under an id: publishes started and finished events around it and turns
   * its outcome into the finished event's code.
   */
  async function tracked<T>(
    kind: OperationKind,
    ctx: OperationContext,
    target: { pid: number; checkpointId: string },
    run: (operationId: string) => Promise<T>,
    restoredPid: (result: T) => number = () => 0,
  ): Promise<T> {
    const operationId = newOperationId();
    const started = Date.now();
    ctx.onStarted?.(operationId);
    deps.events.publish(operationId, {
      type: "started",
      kind,
      caller: ctx.caller,
      pid: target.pid,
      checkpointId: target.checkpointId,
      interactive: ctx.callbacks !== undefined,
    });
    const finish = (code: ErrorCode | "OK", message: string, pid: number) =>
      deps.events.publish(operationId, {
        type: "finished",
        code,
        message,
        durationMs: Date.now() - started,
        restoredPid: pid,
      });
    try {
      const result = await run(operationId);
      finish("OK", "", restoredPid(result));
      return result;
    } catch (err) {
      // A caller that went away vetoes at CRIU's next callback, and CRIU then reports a failure
      // of its own; what ended the operation was the cancellation (or deadline), so say that.
      const reason: unknown = ctx.signal?.aborted ? ctx.signal.reason : undefined;
      if (reason instanceof GatewayError) finish(reason.code, reason.message, 0);
      else if (ctx.signal?.aborted) finish("CANCELLED", "the caller went away", 0);
      else if (err instanceof GatewayError) finish(err.code, err.message, 0);
      else finish("INTERNAL", "internal error", 0);
      throw err;
    }
  }

  /**
   * Answers CRIU's callbacks of one dump or restore: the caller answers when it asked for
   * callbacks on a Session, the gateway otherwise. Every callback and answer is published.
   * A callback the gateway's `gate` refuses is answered with failure, CRIU rolls back, and
   * `refuse` is told why. So is a caller's answer that names external resources
   * (query-ext-files) without the admin class: they reach CRIU's add_external just as
   * options.external does.
   */
  function notifyHandler(
    operationId: string,
    ctx: OperationContext,
    callerWantsCallbacks: boolean,
    gate: CallbackGate | undefined,
    refuse: (err: unknown) => void,
  ) {
    let sequence = 0;
    const publish = (payload: EventPayload) => deps.events.publish(operationId, payload);
    return async (event: NotifyEvent): Promise<NotifyAnswer> => {
      sequence++;
      const n = sequence;
      publish({ type: "callback", sequence: n, script: event.script, pid: event.pid });
      let answer: NotifyAnswer = { success: true };
      let by: AnsweredBy = "gateway";
      const callbacks = ctx.callbacks;
      let refused = false;
      if (gate) {
        try {
          await gate(event.script, event.pid);
        } catch (err) {
          refused = true;
          refuse(err);
        }
      }
      if (refused) {
        answer = { success: false };
      } else if (ctx.signal?.aborted) {
        answer = { success: false };
        by = "cancelled";
      } else if (callbacks && callerWantsCallbacks) {
        ({ answer, by } = await askCaller(callbacks, ctx.signal, {
          operationId,
          sequence: n,
          script: event.script,
          pid: event.pid,
          fdReceived: event.fds.length > 0,
          timeoutMs: callbacks.timeoutMs,
        }));
        const allowed = ctx.optionClasses ?? deps.allowedOptionClasses;
        if (answer.success && (answer.external?.length ?? 0) > 0 && !allowed.has("admin")) {
          refuse(
            new GatewayError(
              "PERMISSION_DENIED",
              `the notify_reply to ${event.script} names external resources, which CRIU adds as it would options.external, an option reserved to administrators; the ${event.script === "query-ext-files" ? "dump" : "operation"} was rolled back. Answer without external`,
            ),
          );
          answer = { success: false };
        }
      }
      publish({
        type: "callback-answered",
        sequence: n,
        script: event.script,
        success: answer.success,
        answeredBy: by,
      });
      return answer;
    };
  }

  async function logTail(dir: string, file: string): Promise<string[]> {
    try {
      return lastLines(await fs.readFile(join(dir, file), "utf8"), deps.logTailLines);
    } catch {
      return [];
    }
  }

  /**
   * Runs a dump, pre-dump or restore request: callbacks answered by notifyHandler, a cancellation
   * vetoed at CRIU's next callback. When the exchange itself fails, the error carries the tail of
   * CRIU's log for this request.
   */
  async function exchangeWithCallbacks(
    req: CriuReq,
    operationId: string,
    ctx: OperationContext,
    options: CriuOptions | undefined,
    context: FailureContext,
    log: { dir: string; file: string },
    gate?: CallbackGate,
  ): Promise<CriuResp> {
    let refusal: unknown;
    try {
      const onNotify = notifyHandler(operationId, ctx, options?.notifyScripts === true, gate, (err) => {
        refusal ??= err;
      });
      const resp = await exchange(
        req,
        { signal: ctx.signal, onNotify, abortMode: "veto", vetoGraceMs: deps.vetoGraceMs },
        context,
      );
      // CRIU failed because the gateway refused a callback: say why, not what CRIU made of it.
      if (refusal) throw refusal;
      return resp;
    } catch (err) {
      if (refusal) throw refusal;
      const tail = await logTail(log.dir, log.file);
      if (err instanceof GatewayError && err.criu && tail.length > 0) err.criu.logTail = tail;
      throw err;
    }
  }

  async function version(ctx: OperationContext = { caller: "gateway" }): Promise<CriuVersion> {
    return tracked("version", ctx, { pid: 0, checkpointId: "" }, () => versionNow(ctx.signal));
  }

  async function versionNow(signal?: AbortSignal): Promise<CriuVersion> {
    const resp = await exchangeReusable(
      { type: CriuReqType.VERSION },
      { signal },
      { action: "report its version", logTail: [] },
    );
    if (!resp.success || !resp.version)
      throw criuRefused(resp, { action: "report its version", logTail: [] });
    const v = resp.version;
    cachedVersion = {
      majorNumber: v.majorNumber,
      minorNumber: v.minorNumber,
      sublevel: v.sublevel,
      extra: v.extra,
      gitid: v.gitid ?? "",
      name: v.name ?? "",
    };
    return cachedVersion;
  }

  async function criuVersionString(): Promise<string> {
    const v = cachedVersion ?? (await versionNow());
    return [v.majorNumber, v.minorNumber, v.sublevel].filter((n) => n !== undefined).join(".");
  }

  async function check(options: CriuOptions | undefined, ctx: OperationContext): Promise<void> {
    return tracked("check", ctx, { pid: 0, checkpointId: "" }, () =>
      checkNow(options, ctx.signal, ctx.optionClasses),
    );
  }

  async function checkNow(
    options: CriuOptions | undefined,
    signal?: AbortSignal,
    optionClasses: ReadonlySet<OptionClass> = deps.allowedOptionClasses,
  ): Promise<void> {
    checkOptionClasses(options, optionClasses);
    validateOptionValues(options);
    const scratch = await store.scratch("check");
    try {
      const context = { action: "confirm the kernel supports checkpoint/restore", logTail: [] as string[] };
      const req: CriuReq = {
        type: CriuReqType.CHECK,
        opts: toCriuOpts(options, { imagesDirFd: scratch.fd, logFile: "check.log" }),
      };
      const resp = await exchange(req, { signal }, context);
      if (!resp.success) {
        context.logTail = await logTail(scratch.path, "check.log");
        throw criuRefused(resp, context);
      }
    } finally {
      await scratch.discard();
    }
  }

  async function featureCheck(ctx: OperationContext): Promise<Features> {
    return tracked("feature-check", ctx, { pid: 0, checkpointId: "" }, () => featureCheckNow(ctx.signal));
  }

  async function featureCheckNow(signal?: AbortSignal): Promise<Features> {
    const context = { action: "check features", logTail: [] };
    const resp = await exchangeReusable(
      { type: CriuReqType.FEATURE_CHECK, features: { memTrack: true, lazyPages: true, pidfdStore: true } },
      { signal },
      context,
    );
    if (!resp.success) throw criuRefused(resp, context);
    const features = {
      memTrack: resp.features?.memTrack ?? false,
      lazyPages: resp.features?.lazyPages ?? false,
      pidfdStore: resp.features?.pidfdStore ?? false,
    };
    cachedFeatures ??= Promise.resolve(features);
    return features;
  }

  async function memTrackAvailable(signal?: AbortSignal): Promise<boolean> {
    if (!cachedFeatures) {
      const asking = featureCheckNow(signal);
      cachedFeatures = asking;
      // A failed check is not remembered: the next call asks again.
      asking.catch(() => {
        if (cachedFeatures === asking) cachedFeatures = undefined;
      });
    }
    return (await cachedFeatures).memTrack;
  }

  /**
   * Dirty-memory tracking is asked for by track_mem and always used by a pre-dump (CRIU turns
   * track_mem on for it). Without the kernel's soft-dirty bits CRIU refuses track_mem, and a
   * pre-dump aborts CRIU outright (a BUG() in CRIU 4.1), so the gateway refuses first, saying why.
   */
  async function requireMemTrack(
    kind: "dump" | "pre-dump",
    options: CriuOptions | undefined,
    signal?: AbortSignal,
  ) {
    if (kind === "dump" && options?.trackMem !== true) return;
    if (await memTrackAvailable(signal)) return;
    throw new GatewayError(
      "FAILED_PRECONDITION",
      kind === "pre-dump"
        ? "a pre-dump needs dirty-memory tracking, which this host's kernel lacks (FeatureCheck reports mem_track=false; the kernel needs CONFIG_MEM_SOFT_DIRTY). Dump without a pre-dump instead"
        : "options.track_mem needs dirty-memory tracking, which this host's kernel lacks (FeatureCheck reports mem_track=false; the kernel needs CONFIG_MEM_SOFT_DIRTY). Leave track_mem unset",
    );
  }

  /**
   * CRIU's statistics image in `dir`, or undefined when it wrote none or it cannot be read.
   * Statistics are a report, not the result: nothing about them may fail a dump CRIU made, whose
   * processes may now exist only in its images.
   */
  async function readStats(dir: string, file: string) {
    try {
      return decodeStatsImage(await fs.readFile(join(dir, file)));
    } catch {
      return undefined;
    }
  }

  async function dumpStatistics(dir: string): Promise<DumpStatistics | undefined> {
    const d = (await readStats(dir, STATS_DUMP_FILE))?.dump;
    if (!d) return undefined;
    return {
      freezingTimeUs: d.freezingTime,
      frozenTimeUs: d.frozenTime,
      memdumpTimeUs: d.memdumpTime,
      memwriteTimeUs: d.memwriteTime,
      pagesScanned: d.pagesScanned,
      pagesSkippedParent: d.pagesSkippedParent,
      pagesWritten: d.pagesWritten,
      irmapResolveTimeUs: d.irmapResolve ?? 0,
      pagesLazy: d.pagesLazy,
      pagePipes: d.pagePipes ?? 0,
      pagePipeBufs: d.pagePipeBufs ?? 0,
      shpagesScanned: d.shpagesScanned ?? 0,
      shpagesSkippedParent: d.shpagesSkippedParent ?? 0,
      shpagesWritten: d.shpagesWritten ?? 0,
    };
  }

  async function restoreStatistics(dir: string): Promise<RestoreStatistics | undefined> {
    const r = (await readStats(dir, STATS_RESTORE_FILE))?.restore;
    if (!r) return undefined;
    return {
      pagesCompared: r.pagesCompared,
      pagesSkippedCow: r.pagesSkippedCow,
      forkingTimeUs: r.forkingTime,
      restoreTimeUs: r.restoreTime,
      pagesRestored: r.pagesRestored ?? 0,
    };
  }

  /** Refuses pids that are invalid, absent, or whose tree would contain the gateway or a worker. */
  async function checkDumpTarget(pid: number | undefined): Promise<number> {
    if (pid === undefined || pid === 0) {
      throw invalidArgument("options.pid is required: the pid of the root of the process tree to dump");
    }
    if (pid < 0) throw invalidArgument(`options.pid must be a positive pid, not ${pid}`);
    if (pid === process.pid || workers.has(pid)) {
      throw new GatewayError("PERMISSION_DENIED", `pid ${pid} is the gateway or one of its CRIU workers`);
    }
    if (!(await exists(`/proc/${pid}`))) throw new GatewayError("NOT_FOUND", `no process with pid ${pid}`);
    // A dump covers the whole tree under pid: if the gateway is in it, refuse. The gateway's
    // ancestors only ever shrink (an orphan is adopted by an ancestor: a subreaper or init), so
    // the set read at the first dump holds them all; only a pid in it is looked up again, live.
    startupAncestors ??= ancestorsOf(process.pid).then((pids) => new Set(pids));
    if ((await startupAncestors).has(pid) && (await ancestorsOf(process.pid)).includes(pid)) {
      throw new GatewayError(
        "PERMISSION_DENIED",
        `pid ${pid} is an ancestor of the gateway; its tree would include the gateway itself`,
      );
    }
    return pid;
  }

  async function dump(input: DumpInput, ctx: OperationContext): Promise<DumpResult> {
    return tracked("dump", ctx, { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId }, (id) =>
      dumpNow("dump", input, ctx, id),
    );
  }

  async function preDump(input: DumpInput, ctx: OperationContext): Promise<DumpResult> {
    return tracked(
      "pre-dump",
      ctx,
      { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId },
      (id) => dumpNow("pre-dump", input, ctx, id),
    );
  }

  /** A parent must hold memory pages: a dump or a pre-dump, not a cpuinfo checkpoint. */
  async function checkParent(parentId: string | undefined): Promise<void> {
    if (!parentId) return;
    const parent = await store.get(parentId).catch((err: unknown) => {
      if (err instanceof GatewayError && err.code === "NOT_FOUND")
        throw new GatewayError("NOT_FOUND", `parent checkpoint ${parentId} does not exist`);
      throw err;
    });
    if (parent.kind === "cpuinfo") {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `parent checkpoint ${parentId} is a cpuinfo checkpoint; a parent must be a dump or a pre-dump`,
      );
    }
    // CRIU tells the same process from a reused pid by the parent's recorded dump time, which it
    // records only with track_mem; without it CRIU fails the dump half-way ("Pid-reuse detection
    // failed"). Say so before a worker starts.
    const inventory = await store.readImage(parentId, INVENTORY_FILE);
    let recorded = false;
    try {
      recorded = inventory !== undefined && inventoryRecordsDumpTime(inventory);
    } catch {
      recorded = false;
    }
    if (!recorded) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `parent checkpoint ${parentId} cannot be a parent: CRIU uses a parent only when it recorded the time of its dump, which a pre-dump always does and a dump only with options.track_mem (FeatureCheck says whether this host can track memory)`,
      );
    }
  }

  async function dumpNow(
    kind: "dump" | "pre-dump",
    input: DumpInput,
    ctx: OperationContext,
    operationId: string,
  ): Promise<DumpResult> {
    const checked = await checkDumpInput(kind, input, ctx);
    return dumpStep(kind, input, checked, ctx.frozenTree ?? processTree, (req, context, log, gate) =>
      exchangeWithCallbacks(req, operationId, ctx, input.options, context, log, gate),
    );
  }

  /** Everything a dump or pre-dump checks before a worker starts. */
  async function checkDumpInput(kind: "dump" | "pre-dump", input: DumpInput, ctx: OperationContext) {
    const signal = ctx.signal;
    ImageStore.validateId(input.checkpointId);
    if (input.parentCheckpointId) ImageStore.validateId(input.parentCheckpointId, "parent_checkpoint_id");
    checkOptionClasses(input.options, ctx.optionClasses ?? deps.allowedOptionClasses);
    validateOptionValues(input.options);
    const pid = await checkDumpTarget(input.options?.pid);
    await checkParent(input.parentCheckpointId);
    // After the target checks, whose statuses (NOT_FOUND, PERMISSION_DENIED) callers rely on.
    const pagesSentTo = pageServerTarget(input.options);
    await requireMemTrack(kind, input.options, signal);
    return { pid, pagesSentTo, criuVersion: await criuVersionString() };
  }

  /**
   * One dump or pre-dump into a staged checkpoint, published once CRIU has succeeded. `send` runs
   * the request: on a fresh worker, or on the worker of an iterative dump.
   */
  async function dumpStep(
    kind: "dump" | "pre-dump" | "loop-pre-dump",
    input: DumpInput,
    checked: { pid: number; pagesSentTo: string | undefined; criuVersion: string },
    frozenTree: (rootPid: number) => Promise<ProcessRecord[]>,
    send: (
      req: CriuReq,
      context: FailureContext,
      log: { dir: string; file: string },
      gate: (script: string) => Promise<void>,
    ) => Promise<CriuResp>,
  ): Promise<DumpResult> {
    const { pid } = checked;
    const metaKind = kind === "dump" ? "dump" : "pre-dump";
    const staged = await store.stage(input.checkpointId, input.parentCheckpointId || undefined);
    const logFile = kind === "dump" ? DUMP_LOG : PRE_DUMP_LOG;
    const context: FailureContext = {
      action: `${metaKind} pid ${pid}`,
      pid,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    let published = false;
    try {
      const req: CriuReq = {
        // A lone pre-dump is SINGLE_PRE_DUMP: PRE_DUMP keeps the worker waiting for further
        // pre-dump requests on the same connection, which only an iterative dump sends.
        type: {
          dump: CriuReqType.DUMP,
          "pre-dump": CriuReqType.SINGLE_PRE_DUMP,
          "loop-pre-dump": CriuReqType.PRE_DUMP,
        }[kind],
        opts: toCriuOpts(input.options, {
          imagesDirFd: staged.fd,
          logFile,
          parentImg: staged.parentImg,
          notifyScripts: true,
        }),
      };
      // At post-dump the tree is frozen and complete: what was checked before CRIU started is
      // checked again on exactly what CRIU is about to write off, and kept with the checkpoint.
      let processes: ProcessRecord[] | undefined;
      const gate = async (script: string) => {
        if (script === "post-dump") processes = await frozenTree(pid);
      };
      const resp = await send(req, context, { dir: staged.path, file: logFile }, gate);
      if (!resp.success) {
        context.logTail = await logTail(staged.path, logFile);
        throw criuRefused(resp, context);
      }
      const statistics = await dumpStatistics(staged.path);
      // Published even when the caller has gone: CRIU succeeded, and unless leave_running was set
      // the processes now exist only in these images.
      const checkpoint = await staged.publish({
        rootPid: pid,
        parentId: input.parentCheckpointId || undefined,
        criuVersion: checked.criuVersion,
        // A pre-dump never stops the tree (CRIU forces it to keep running).
        leaveRunning: metaKind === "pre-dump" || (input.options?.leaveRunning ?? false),
        kind: metaKind,
        dumpStatistics: statistics,
        processes,
        pagesSentTo: checked.pagesSentTo,
        durability: input.durability,
      });
      published = true;
      return { checkpoint, restored: resp.dump?.restored ?? false, statistics };
    } finally {
      if (!published) await staged.discard();
    }
  }

  /**
   * Iterative migration on one worker, as CRIU's pre_dump_loop serves it: PRE_DUMP requests, each
   * answered and followed by the next, then the DUMP. Pre-dump n is checkpoint "<id>.pre-<n>",
   * the child of the one before; the dump is "<id>", the child of the last pre-dump. `next` is
   * asked after each pre-dump whether to pre-dump again (false) or make the final dump (true).
   */
  async function iterativeDump(
    input: DumpInput,
    ctx: OperationContext,
    next: (preDump: DumpResult) => Promise<boolean>,
  ): Promise<DumpResult> {
    return tracked(
      "iterative-dump",
      ctx,
      { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId },
      async (operationId) => {
        ImageStore.validateId(input.checkpointId);
        ImageStore.validateId(preDumpId(input.checkpointId, 1), "checkpoint_id (with its .pre-<n> suffix)");
        if (input.options?.ps !== undefined) {
          throw invalidArgument(
            "options.ps is not supported in an iterative dump; dump to a page server with Dump",
          );
        }
        const checked = await checkDumpInput("pre-dump", input, ctx);
        const worker = SwrkWorker.start({ criuBin: deps.criuBin, onReaped: (pid) => workers.delete(pid) });
        if (worker.pid !== undefined) workers.set(worker.pid, worker);
        // One handler for the worker's life; each step's gate (the post-dump tree check) in turn.
        let gate: (script: string) => Promise<void> = async () => {};
        let refusal: unknown;
        const onNotify = notifyHandler(
          operationId,
          ctx,
          input.options?.notifyScripts === true,
          (script) => gate(script),
          (err) => {
            refusal ??= err;
          },
        );
        const frozenTree = ctx.frozenTree ?? processTree;
        const send = async (
          req: CriuReq,
          context: FailureContext,
          log: { dir: string; file: string },
          stepGate: (script: string) => Promise<void>,
        ) => {
          gate = stepGate;
          try {
            const resp = await worker.request(req, {
              signal: ctx.signal,
              onNotify,
              abortMode: "veto",
              vetoGraceMs: deps.vetoGraceMs,
            });
            if (refusal) throw refusal;
            return resp;
          } catch (err) {
            if (refusal) throw refusal;
            const failure =
              err instanceof WorkerFailure ? workerFailed(err, requestTypeName(req.type), context) : err;
            const tail = await logTail(log.dir, log.file);
            if (failure instanceof GatewayError && failure.criu && tail.length > 0)
              failure.criu.logTail = tail;
            throw failure;
          }
        };
        try {
          let parent = input.parentCheckpointId;
          for (let n = 1; ; n++) {
            const id = preDumpId(input.checkpointId, n);
            ImageStore.validateId(id, "checkpoint_id (with its .pre-<n> suffix)");
            const preDump = await dumpStep(
              "loop-pre-dump",
              { checkpointId: id, parentCheckpointId: parent, options: input.options },
              checked,
              frozenTree,
              send,
            );
            parent = id;
            // The worker waits in CRIU's loop meanwhile; closing it (on cancellation) ends the loop.
            if (await next(preDump)) {
              return await dumpStep(
                "dump",
                { ...input, parentCheckpointId: parent },
                checked,
                frozenTree,
                send,
              );
            }
          }
        } finally {
          await worker.close();
        }
      },
    );
  }

  async function restore(input: RestoreInput, ctx: OperationContext): Promise<RestoreResult> {
    return tracked(
      "restore",
      ctx,
      { pid: 0, checkpointId: input.checkpointId },
      (id) => restoreNow(input, ctx, id),
      (r) => r.pid,
    );
  }

  async function restoreNow(
    input: RestoreInput,
    ctx: OperationContext,
    operationId: string,
  ): Promise<RestoreResult> {
    ImageStore.validateId(input.checkpointId);
    checkOptionClasses(input.options, ctx.optionClasses ?? deps.allowedOptionClasses);
    validateOptionValues(input.options);
    const opened = await store.openCheckpoint(input.checkpointId);
    const context: FailureContext = {
      action: `restore checkpoint ${input.checkpointId}`,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    try {
      if (opened.info.kind !== "dump") {
        throw new GatewayError(
          "FAILED_PRECONDITION",
          {
            "pre-dump": `checkpoint ${input.checkpointId} is a pre-dump, which holds memory only and cannot be restored; dump with parent_checkpoint_id ${input.checkpointId} and restore that`,
            pages: `checkpoint ${input.checkpointId} holds only the memory a page server received; import the dump's other images into it (ExportImages on the dumping gateway, then ImportImages here) and restore it then`,
            cpuinfo: `checkpoint ${input.checkpointId} is a cpuinfo checkpoint, not a dump; it cannot be restored`,
          }[opened.info.kind],
        );
      }
      if (opened.info.pagesSentTo !== undefined) {
        throw new GatewayError(
          "FAILED_PRECONDITION",
          `checkpoint ${input.checkpointId} holds no memory: its pages went to the page server at ${opened.info.pagesSentTo}. Export its images (ExportImages) into that server's checkpoint (ImportImages) and restore that one`,
        );
      }
      const recorded = opened.info.processes;
      if (ctx.confinedRestore) {
        if (!recorded) {
          throw permissionDenied(
            `checkpoint ${input.checkpointId} has no record of the processes it holds, so only an administrator may restore it`,
          );
        }
        await checkImagesForConfinedRestore(opened.path, input.checkpointId);
      }
      // At post-restore the tree is re-created and has not yet run: a confined restore is checked
      // on what CRIU opened, as root, on the caller's behalf.
      const gate: CallbackGate | undefined =
        ctx.confinedRestore && recorded
          ? async (script, pid) => {
              if (script !== "post-restore") return;
              if (pid === undefined) throw new Error("CRIU's post-restore callback named no pid");
              await checkRestoredTree(pid, recorded);
            }
          : undefined;
      // Statistics of an earlier restore must not pass for this one's.
      await fs.rm(join(opened.path, STATS_RESTORE_FILE), { force: true });
      const req: CriuReq = {
        type: CriuReqType.RESTORE,
        opts: toCriuOpts(input.options, {
          imagesDirFd: opened.fd,
          logFile: RESTORE_LOG,
          notifyScripts: true,
        }),
      };
      const resp = await exchangeWithCallbacks(
        req,
        operationId,
        ctx,
        input.options,
        context,
        { dir: opened.path, file: RESTORE_LOG },
        gate,
      );
      if (!resp.success || !resp.restore) {
        context.logTail = await logTail(opened.path, RESTORE_LOG);
        throw criuRefused(resp, context);
      }
      return { pid: resp.restore.pid, statistics: await restoreStatistics(opened.path) };
    } finally {
      await opened.close();
    }
  }

  /** CRIU's log of a checkpoint; NOT_FOUND when there is no such checkpoint or log. */
  async function checkpointLog(checkpointId: string, kind: LogKind): Promise<LogText> {
    ImageStore.validateId(checkpointId);
    let file: string;
    if (kind === "creation") {
      const info = await store.get(checkpointId);
      file = {
        dump:
          info.pagesSentTo === undefined && (await pageServerMade(checkpointId)) ? PAGE_SERVER_LOG : DUMP_LOG,
        "pre-dump": PRE_DUMP_LOG,
        cpuinfo: CPUINFO_DUMP_LOG,
        pages: PAGE_SERVER_LOG,
      }[info.kind];
    } else {
      file = LOG_FILE[kind];
    }
    return store.readLog(checkpointId, file, LOG_MAX_BYTES);
  }

  async function waitPid(pid: number, ctx: OperationContext): Promise<WaitOutcome> {
    return tracked("wait-pid", ctx, { pid, checkpointId: "" }, async () => {
      // waitpid() would read 0 and negative pids as "any child" and process groups.
      if (!Number.isInteger(pid) || pid <= 0) throw invalidArgument(`pid must be a positive pid, not ${pid}`);
      if (!(await exists(`/proc/${pid}`))) throw new GatewayError("NOT_FOUND", `no process with pid ${pid}`);
      const context: FailureContext = { action: `wait for pid ${pid}`, pid, logTail: [] };
      const resp = await exchange({ type: CriuReqType.WAIT_PID, pid }, { signal: ctx.signal }, context);
      if (!resp.success || resp.status === undefined) {
        // CRIU sends no cr_errno here (it sets the value but not its presence flag); with the
        // process shown to exist above, the cause is ECHILD: it is not the worker's child.
        const err = criuRefused(resp, context);
        throw new GatewayError(
          "FAILED_PRECONDITION",
          `CRIU cannot wait for pid ${pid}: waitpid() works only for a process's own children, and the CRIU worker that runs each gateway call is a fresh process with no children. Watch the process by other means (it is reaped by its own parent)`,
          err.criu,
        );
      }
      return decodeWaitStatus(resp.status);
    });
  }

  async function cpuinfoDump(
    input: { checkpointId: string; options: CriuOptions | undefined },
    ctx: OperationContext,
  ): Promise<CheckpointInfo> {
    return tracked("cpuinfo-dump", ctx, { pid: 0, checkpointId: input.checkpointId }, async () => {
      ImageStore.validateId(input.checkpointId);
      checkOptionClasses(input.options, ctx.optionClasses ?? deps.allowedOptionClasses);
      validateOptionValues(input.options);
      const criuVersion = await criuVersionString();
      const staged = await store.stage(input.checkpointId, undefined);
      const context: FailureContext = {
        action: "record this host's CPU description",
        checkpointId: input.checkpointId,
        logTail: [],
      };
      let published = false;
      try {
        const req: CriuReq = {
          type: CriuReqType.CPUINFO_DUMP,
          opts: toCriuOpts(input.options, { imagesDirFd: staged.fd, logFile: CPUINFO_DUMP_LOG }),
        };
        const resp = await exchange(req, { signal: ctx.signal }, context);
        if (!resp.success) {
          context.logTail = await logTail(staged.path, CPUINFO_DUMP_LOG);
          throw cpuinfoRefused(resp, context);
        }
        const checkpoint = await staged.publish({
          rootPid: 0,
          parentId: undefined,
          criuVersion,
          leaveRunning: false,
          kind: "cpuinfo",
        });
        published = true;
        return checkpoint;
      } finally {
        if (!published) await staged.discard();
      }
    });
  }

  async function cpuinfoCheck(
    input: { checkpointId: string; options: CriuOptions | undefined },
    ctx: OperationContext,
  ): Promise<void> {
    return tracked("cpuinfo-check", ctx, { pid: 0, checkpointId: input.checkpointId }, async () => {
      ImageStore.validateId(input.checkpointId);
      checkOptionClasses(input.options, ctx.optionClasses ?? deps.allowedOptionClasses);
      validateOptionValues(input.options);
      const opened = await store.openCheckpoint(input.checkpointId);
      try {
        if (!(await exists(join(opened.path, CPUINFO_FILE)))) {
          throw new GatewayError(
            "FAILED_PRECONDITION",
            `checkpoint ${input.checkpointId} holds no CPU description; make one with CpuinfoDump`,
          );
        }
        const context: FailureContext = {
          action: `run on this host's CPU what checkpoint ${input.checkpointId} describes`,
          checkpointId: input.checkpointId,
          logTail: [],
        };
        const req: CriuReq = {
          type: CriuReqType.CPUINFO_CHECK,
          opts: toCriuOpts(input.options, { imagesDirFd: opened.fd, logFile: CPUINFO_CHECK_LOG }),
        };
        const resp = await exchange(req, { signal: ctx.signal }, context);
        if (!resp.success) {
          context.logTail = await logTail(opened.path, CPUINFO_CHECK_LOG);
          throw cpuinfoRefused(resp, context);
        }
      } finally {
        await opened.close();
      }
    });
  }

  /** Page servers running now, by checkpoint id; each entry's `ended` settles once it is reaped. */
  const pageServers = new Map<
    string,
    { info: PageServerInfo; stop(): void; ended: Promise<void>; answered: boolean }
  >();

  /** Whether a dump checkpoint was completed from a page server's (its page-server.log is there). */
  async function pageServerMade(checkpointId: string): Promise<boolean> {
    return exists(join(store.root, checkpointId, PAGE_SERVER_LOG));
  }

  /**
   * Starts a page server into a staged checkpoint. CRIU's PAGE_SERVER_CHLD forks the server as a
   * child of the worker and answers with its pid and port; keep_open keeps the worker, and the
   * WAIT_PID that follows on the same socket answers when the server exits, with its status (0
   * once a dump's pages were all received and flushed). The plain PAGE_SERVER form is not used:
   * it daemonizes the server away from the worker, so nobody could learn how it ended or reap it.
   */
  async function startPageServer(input: PageServerInput, ctx: OperationContext): Promise<PageServerInfo> {
    ImageStore.validateId(input.checkpointId);
    if (input.options?.ps !== undefined) {
      throw invalidArgument("options.ps is for a dump; a page server listens on address and port");
    }
    if (!Number.isInteger(input.port) || input.port < 0 || input.port > 65535) {
      throw invalidArgument(`port must be 0 to 65535, not ${input.port}`);
    }
    if (input.address !== "" && isIP(input.address) === 0) {
      throw invalidArgument(`address ${JSON.stringify(input.address.slice(0, 64))} is not an IP address`);
    }
    checkOptionClasses(input.options, deps.allowedOptionClasses);
    validateOptionValues(input.options);
    if (pageServers.has(input.checkpointId)) {
      throw new GatewayError(
        "ALREADY_EXISTS",
        `a page server already writes into checkpoint ${input.checkpointId}`,
      );
    }
    const criuVersion = await criuVersionString();
    const staged = await store.stage(input.checkpointId, undefined);
    const operationId = newOperationId();
    const publish = (payload: EventPayload) => deps.events.publish(operationId, payload);
    const started = Date.now();
    ctx.onStarted?.(operationId);
    publish({
      type: "started",
      kind: "page-server",
      caller: ctx.caller,
      pid: 0,
      checkpointId: input.checkpointId,
      interactive: false,
    });
    const finish = (code: ErrorCode | "OK", message: string) =>
      publish({ type: "finished", code, message, durationMs: Date.now() - started, restoredPid: 0 });
    const worker = SwrkWorker.start({ criuBin: deps.criuBin, onReaped: (pid) => workers.delete(pid) });
    if (worker.pid !== undefined) workers.set(worker.pid, worker);
    const context: FailureContext = {
      action: `start a page server into checkpoint ${input.checkpointId}`,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    /** Kills the worker's process group: the worker and a server it may have forked already. */
    const killGroup = () => {
      if (worker.pid === undefined) return;
      try {
        process.kill(-worker.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    };
    let resp: CriuResp;
    try {
      const opts = toCriuOpts(input.options, { imagesDirFd: staged.fd, logFile: PAGE_SERVER_LOG });
      opts.ps = { port: input.port, ...(input.address === "" ? {} : { address: input.address }) };
      resp = await worker.request(
        { type: CriuReqType.PAGE_SERVER_CHLD, keepOpen: true, opts },
        { signal: ctx.signal },
      );
      if (!resp.success || resp.ps?.pid === undefined || resp.ps.port === undefined) {
        context.logTail = await logTail(staged.path, PAGE_SERVER_LOG);
        throw criuRefused(resp, context);
      }
    } catch (err) {
      killGroup();
      await worker.close();
      await staged.discard();
      const failure = err instanceof WorkerFailure ? workerFailed(err, "PAGE_SERVER_CHLD", context) : err;
      if (failure instanceof GatewayError) finish(failure.code, failure.message);
      else finish("INTERNAL", "internal error");
      throw failure;
    }
    const info: PageServerInfo = {
      checkpointId: input.checkpointId,
      pid: resp.ps.pid,
      address: input.address,
      port: resp.ps.port,
      startTime: new Date(started),
    };
    const entry = {
      info,
      answered: false,
      stopped: false,
      stop() {
        // The server is the worker's unreaped child until WAIT_PID answers, so its pid is its own.
        if (entry.answered || entry.stopped) return;
        entry.stopped = true;
        try {
          process.kill(info.pid, "SIGTERM");
        } catch {
          // Exited meanwhile; WAIT_PID reports how.
        }
      },
      ended: Promise.resolve(),
    };
    entry.ended = (async () => {
      let outcome: { code: ErrorCode | "OK"; message: string };
      try {
        const waited = await worker.request({ type: CriuReqType.WAIT_PID, pid: info.pid });
        entry.answered = true;
        const status =
          waited.success && waited.status !== undefined ? decodeWaitStatus(waited.status) : undefined;
        if (status?.exitCode === 0 && !entry.stopped) {
          await staged.publish({
            rootPid: 0,
            parentId: undefined,
            criuVersion,
            leaveRunning: false,
            kind: "pages",
          });
          outcome = { code: "OK", message: "" };
        } else {
          outcome = entry.stopped
            ? { code: "CANCELLED", message: "the page server was stopped" }
            : {
                code: "ABORTED",
                message: `the page server ended without receiving a whole dump (${status?.signal ? `signal ${status.signal}` : `exit status ${status?.exitCode}`})`,
              };
        }
      } catch {
        killGroup();
        outcome = { code: "INTERNAL", message: "the page server's worker failed" };
      } finally {
        entry.answered = true;
        await worker.close();
        await staged.discard();
        pageServers.delete(info.checkpointId);
        ctx.onServerEnded?.();
      }
      finish(outcome.code, outcome.message);
    })();
    pageServers.set(info.checkpointId, entry);
    return info;
  }

  async function stopPageServer(checkpointId: string): Promise<void> {
    ImageStore.validateId(checkpointId);
    const entry = pageServers.get(checkpointId);
    if (!entry) throw new GatewayError("NOT_FOUND", `no page server writes into checkpoint ${checkpointId}`);
    entry.stop();
    await entry.ended;
  }

  function listPageServers(): PageServerInfo[] {
    return [...pageServers.values()]
      .map((e) => e.info)
      .sort(
        (a, b) =>
          a.startTime.getTime() - b.startTime.getTime() || a.checkpointId.localeCompare(b.checkpointId),
      );
  }

  /** The most ExportImages returns: what fits in a gRPC message of the default 4 MiB limit. */
  async function exportImages(
    checkpointId: string,
  ): Promise<{ checkpoint: CheckpointInfo; files: ImageFileData[] }> {
    ImageStore.validateId(checkpointId);
    const checkpoint = await store.get(checkpointId);
    return { checkpoint, files: await store.exportImages(checkpointId, LOG_MAX_BYTES) };
  }

  async function importImages(
    checkpointId: string,
    files: readonly ImageFileData[],
    rootPid: number,
    durability: Durability = "fsync",
  ): Promise<CheckpointInfo> {
    ImageStore.validateId(checkpointId);
    if (files.length === 0) throw invalidArgument("files is empty: nothing to import");
    return store.importImages(checkpointId, files, rootPid, durability);
  }

  /**
   * Stops every page server and waits until every worker has exited (used by shutdown, after
   * in-flight calls were aborted).
   */
  async function drain(): Promise<void> {
    draining = true;
    await takeIdle()?.close();
    const servers = [...pageServers.values()];
    for (const entry of servers) entry.stop();
    await Promise.all(servers.map((e) => e.ended));
    await Promise.all([...workers.values()].map((w) => w.exited));
  }

  return {
    version,
    check,
    featureCheck,
    dump,
    preDump,
    iterativeDump,
    restore,
    checkpointLog,
    waitPid,
    cpuinfoDump,
    cpuinfoCheck,
    drain,
    startPageServer,
    stopPageServer,
    listPageServers,
    exportImages,
    importImages,
    /** The pid of the worker kept open for the next VERSION or FEATURE_CHECK, if any. */
    idleWorkerPid: () => idle?.worker.pid,
    /** Pids of the workers running now. */
    workerPids: () => [...workers.keys()],
  };
}

/**
 * Where a dump's memory goes when options.ps is set ("address:port"), else undefined. With
 * lazy_pages, CRIU reads ps as the lazy-pages server's port instead and writes memory locally.
 */
function pageServerTarget(options: CriuOptions | undefined): string | undefined {
  const ps = options?.ps;
  if (ps === undefined || options?.lazyPages === true) return undefined;
  if (!ps.address || isIP(ps.address) === 0) {
    throw invalidArgument(
      "options.ps.address must be the page server's IP address (StartPageServer's address, or the host's)",
    );
  }
  if (!ps.port) throw invalidArgument("options.ps.port is required: the port StartPageServer answered with");
  return isIP(ps.address) === 6 ? `[${ps.address}]:${ps.port}` : `${ps.address}:${ps.port}`;
}

/** The id of pre-dump n of an iterative dump into `checkpointId`. */
export function preDumpId(checkpointId: string, n: number): string {
  return `${checkpointId}.pre-${n}`;
}

/** CRIU's cpuinfo requests report ENOTSUP when CRIU has no CPU comparison for this architecture. */
function cpuinfoRefused(resp: CriuResp, context: FailureContext): GatewayError {
  const err = criuRefused(resp, context);
  if (resp.crErrno !== ENOTSUP) return err;
  return new GatewayError(
    "FAILED_PRECONDITION",
    `CRIU cannot ${context.action}: cpuinfo dump and check are not supported on this CPU architecture`,
    err.criu,
  );
}

const ENOTSUP = 95;

async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

/** The pids from `pid`'s parent up to init, read from /proc. */
async function ancestorsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  let current = pid;
  for (let i = 0; i < 4096 && current > 1; i++) {
    let stat: string;
    try {
      stat = await fs.readFile(`/proc/${current}/stat`, "utf8");
    } catch {
      break;
    }
    // The command name may contain spaces and parentheses: the ppid follows the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid) || ppid <= 0) break;
    out.push(ppid);
    current = ppid;
  }
  return out;
}

/**
 * Puts one callback to the caller and waits for its answer, its timeout, or its going away;
 * whichever comes first decides.
 */
async function askCaller(
  callbacks: NonNullable<OperationContext["callbacks"]>,
  signal: AbortSignal | undefined,
  question: CallbackQuestion,
): Promise<{ answer: NotifyAnswer; by: AnsweredBy }> {
  const local = new AbortController();
  const onAbort = () => local.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      callbacks.ask(question, local.signal).then((answer) => ({ answer, by: "caller" as const })),
      new Promise<{ answer: NotifyAnswer; by: AnsweredBy }>((resolve) => {
        timer = setTimeout(() => resolve({ answer: { success: false }, by: "timeout" }), question.timeoutMs);
      }),
      new Promise<{ answer: NotifyAnswer; by: AnsweredBy }>((resolve) => {
        if (signal?.aborted) resolve({ answer: { success: false }, by: "cancelled" });
        signal?.addEventListener("abort", () => resolve({ answer: { success: false }, by: "cancelled" }), {
          once: true,
        });
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    local.abort();
  }
}
