// The gateway's operations: each runs one `criu swrk` worker, checks its input first, and turns
// every outcome into a result or a GatewayError. No gRPC here; no socket details either.

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
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
import { type ErrorCode, GatewayError, invalidArgument } from "./errors.js";
import type { AnsweredBy, EventBus, EventPayload, OperationKind } from "./eventBus.js";
import { type CheckpointInfo, DUMP_LOG, ImageStore, RESTORE_LOG } from "./imageStore.js";

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
}

export interface DumpInput {
  checkpointId: string;
  parentCheckpointId: string | undefined;
  options: CriuOptions | undefined;
}

export interface RestoreInput {
  checkpointId: string;
  options: CriuOptions | undefined;
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
  /** Told the operation's id before anything else happens. */
  onStarted?(operationId: string): void;
}

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
      if (err instanceof GatewayError) finish(err.code, err.message, 0);
      else finish("INTERNAL", "internal error", 0);
      throw err;
    }
  }

  /**
   * Answers CRIU's callbacks of one dump or restore: the caller answers when it asked for
   * callbacks on a Session, the gateway otherwise. Every callback and answer is published.
   */
  function notifyHandler(operationId: string, ctx: OperationContext, callerWantsCallbacks: boolean) {
    let sequence = 0;
    const publish = (payload: EventPayload) => deps.events.publish(operationId, payload);
    return async (event: NotifyEvent): Promise<NotifyAnswer> => {
      sequence++;
      const n = sequence;
      publish({ type: "callback", sequence: n, script: event.script, pid: event.pid });
      let answer: NotifyAnswer = { success: true };
      let by: AnsweredBy = "gateway";
      const callbacks = ctx.callbacks;
      if (ctx.signal?.aborted) {
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

  async function version(ctx: OperationContext = { caller: "gateway" }): Promise<CriuVersion> {
    return tracked("version", ctx, { pid: 0, checkpointId: "" }, () => versionNow(ctx.signal));
  }

  async function versionNow(signal?: AbortSignal): Promise<CriuVersion> {
    const resp = await exchange(
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
    return tracked("check", ctx, { pid: 0, checkpointId: "" }, () => checkNow(options, ctx.signal));
  }

  async function checkNow(options: CriuOptions | undefined, signal?: AbortSignal): Promise<void> {
    checkOptionClasses(options, deps.allowedOptionClasses);
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
    const resp = await exchange(
      { type: CriuReqType.FEATURE_CHECK, features: { memTrack: true, lazyPages: true, pidfdStore: true } },
      { signal },
      context,
    );
    if (!resp.success) throw criuRefused(resp, context);
    return {
      memTrack: resp.features?.memTrack ?? false,
      lazyPages: resp.features?.lazyPages ?? false,
      pidfdStore: resp.features?.pidfdStore ?? false,
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
    // A dump covers the whole tree under pid: if the gateway is in it, refuse.
    for (const ancestor of await ancestorsOf(process.pid)) {
      if (ancestor === pid) {
        throw new GatewayError(
          "PERMISSION_DENIED",
          `pid ${pid} is an ancestor of the gateway; its tree would include the gateway itself`,
        );
      }
    }
    return pid;
  }

  async function dump(
    input: DumpInput,
    ctx: OperationContext,
  ): Promise<{ checkpoint: CheckpointInfo; restored: boolean }> {
    return tracked("dump", ctx, { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId }, (id) =>
      dumpNow(input, ctx, id),
    );
  }

  async function dumpNow(
    input: DumpInput,
    ctx: OperationContext,
    operationId: string,
  ): Promise<{ checkpoint: CheckpointInfo; restored: boolean }> {
    const signal = ctx.signal;
    ImageStore.validateId(input.checkpointId);
    if (input.parentCheckpointId) ImageStore.validateId(input.parentCheckpointId, "parent_checkpoint_id");
    checkOptionClasses(input.options, deps.allowedOptionClasses);
    validateOptionValues(input.options);
    const pid = await checkDumpTarget(input.options?.pid);
    const criuVersion = await criuVersionString();
    const staged = await store.stage(input.checkpointId, input.parentCheckpointId || undefined);
    const context: FailureContext = {
      action: `dump pid ${pid}`,
      pid,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    let published = false;
    try {
      const req: CriuReq = {
        type: CriuReqType.DUMP,
        opts: toCriuOpts(input.options, {
          imagesDirFd: staged.fd,
          logFile: DUMP_LOG,
          parentImg: staged.parentImg,
          notifyScripts: true,
        }),
      };
      let resp: CriuResp;
      try {
        const onNotify = notifyHandler(operationId, ctx, input.options?.notifyScripts === true);
        resp = await exchange(
          req,
          { signal, onNotify, abortMode: "veto", vetoGraceMs: deps.vetoGraceMs },
          context,
        );
      } catch (err) {
        context.logTail = await logTail(staged.path, DUMP_LOG);
        if (err instanceof GatewayError && err.criu && context.logTail.length > 0)
          err.criu.logTail = context.logTail;
        throw err;
      }
      if (!resp.success) {
        context.logTail = await logTail(staged.path, DUMP_LOG);
        throw criuRefused(resp, context);
      }
      // Published even when the caller has gone: CRIU succeeded, and unless leave_running was set
      // the processes now exist only in these images.
      const checkpoint = await staged.publish({
        rootPid: pid,
        parentId: input.parentCheckpointId || undefined,
        criuVersion,
        leaveRunning: input.options?.leaveRunning ?? false,
      });
      published = true;
      return { checkpoint, restored: resp.dump?.restored ?? false };
    } finally {
      if (!published) await staged.discard();
    }
  }

  async function restore(input: RestoreInput, ctx: OperationContext): Promise<{ pid: number }> {
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
  ): Promise<{ pid: number }> {
    const signal = ctx.signal;
    ImageStore.validateId(input.checkpointId);
    checkOptionClasses(input.options, deps.allowedOptionClasses);
    validateOptionValues(input.options);
    const opened = await store.openCheckpoint(input.checkpointId);
    const context: FailureContext = {
      action: `restore checkpoint ${input.checkpointId}`,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    try {
      const req: CriuReq = {
        type: CriuReqType.RESTORE,
        opts: toCriuOpts(input.options, {
          imagesDirFd: opened.fd,
          logFile: RESTORE_LOG,
          notifyScripts: true,
        }),
      };
      let resp: CriuResp;
      try {
        const onNotify = notifyHandler(operationId, ctx, input.options?.notifyScripts === true);
        resp = await exchange(
          req,
          { signal, onNotify, abortMode: "veto", vetoGraceMs: deps.vetoGraceMs },
          context,
        );
      } catch (err) {
        const tail = await logTail(opened.path, RESTORE_LOG);
        if (err instanceof GatewayError && err.criu && tail.length > 0) err.criu.logTail = tail;
        throw err;
      }
      if (!resp.success || !resp.restore) {
        context.logTail = await logTail(opened.path, RESTORE_LOG);
        throw criuRefused(resp, context);
      }
      return { pid: resp.restore.pid };
    } finally {
      await opened.close();
    }
  }

  /** Waits until every worker has exited (used by shutdown, after in-flight calls were aborted). */
  async function drain(): Promise<void> {
    await Promise.all([...workers.values()].map((w) => w.exited));
  }

  return {
    version,
    check,
    featureCheck,
    dump,
    restore,
    drain,
    /** Pids of the workers running now. */
    workerPids: () => [...workers.keys()],
  };
}

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
