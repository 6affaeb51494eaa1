// The gateway's operations: each runs one `criu swrk` worker, checks its input first, and turns
// every outcome into a result or a GatewayError. No gRPC here; no socket details either.
import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import { type ExchangeOptions, SwrkWorker, WorkerFailure } from "../criu/swrkWorker.js";
import { type CriuReq, CriuReqType, type CriuResp, requestTypeName } from "../criu/wire.js";
import { criuRefused, type FailureContext, lastLines, workerFailed } from "./criuFailure.js";
import { checkOptionClasses, type OptionClass, toCriuOpts, validateOptionValues } from "./criuOptions.js";
import { GatewayError, invalidArgument } from "./errors.js";
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

export type CriuOperations = ReturnType<typeof createCriuOperations>;

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

  async function logTail(dir: string, file: string): Promise<string[]> {
    try {
      return lastLines(await fs.readFile(join(dir, file), "utf8"), deps.logTailLines);
    } catch {
      return [];
    }
  }

  async function version(signal?: AbortSignal): Promise<CriuVersion> {
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
    const v = cachedVersion ?? (await version());
    return [v.majorNumber, v.minorNumber, v.sublevel].filter((n) => n !== undefined).join(".");
  }

  async function check(options: CriuOptions | undefined, signal?: AbortSignal): Promise<void> {
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

  async function featureCheck(signal?: AbortSignal): Promise<Features> {
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
    signal?: AbortSignal,
  ): Promise<{ checkpoint: CheckpointInfo; restored: boolean }> {
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
        resp = await exchange(req, { signal, abortMode: "veto", vetoGraceMs: deps.vetoGraceMs }, context);
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

  async function restore(input: RestoreInput, signal?: AbortSignal): Promise<{ pid: number }> {
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
        resp = await exchange(req, { signal, abortMode: "veto", vetoGraceMs: deps.vetoGraceMs }, context);
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
