// What the operation modules share: the gateway's dependencies, the worker pool, and the few
// steps every operation takes the same way (one validation, one exchange that maps failures).

import { promises as fs } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import type { criuOpts } from "../../../gen/criu/rpc.js";
import { pageSocketOf } from "../../criu/pageSocket.js";
import { type ExchangeOptions, type SwrkWorker, WorkerFailure } from "../../criu/swrkWorker.js";
import { type CriuReq, type CriuReqType, type CriuResp, requestTypeName } from "../../criu/wire.js";
import type { WorkerPool } from "../../criu/workerPool.js";
import { criuRefused, type FailureContext, lastLines, workerFailed } from "../criuFailure.js";
import {
  checkOptionClasses,
  type GatewaySettings,
  type OptionClass,
  toCriuOpts,
  validateOptionValues,
} from "../criuOptions.js";
import { GatewayError } from "../errors.js";
import { ImageStore, type OpenDirectory } from "../imageStore.js";
import { ancestorsOf } from "../processTree.js";
import type { OperationContext, OperationsDeps } from "./operationContext.js";

export interface OperationKit {
  readonly deps: OperationsDeps;
  readonly store: ImageStore;
  readonly pool: WorkerPool;
  /** The option classes a call may use: its guard's, or the gateway's default set. */
  optionClasses(ctx: OperationContext): ReadonlySet<OptionClass>;
  /**
   * The one check of a request's input before anything runs: its checkpoint ids, whether the
   * caller may use the options it sets, and their values.
   */
  validate(
    input: { checkpointId?: string; parentCheckpointId?: string; options: CriuOptions | undefined },
    ctx: OperationContext,
  ): void;
  /**
   * A worker of the pool for the caller to run `requestType` requests on and close; a full pool
   * (RESOURCE_EXHAUSTED) or a cancellation while waiting for one becomes a GatewayError.
   */
  acquire(signal: AbortSignal | undefined, context: FailureContext, requestType: string): Promise<SwrkWorker>;
  /**
   * Like `acquire`, a worker whose fd 4 is a stream socket, with the other end as a Node stream:
   * for a dump whose page server serves there (post-copy).
   */
  acquireServing(
    signal: AbortSignal | undefined,
    context: FailureContext,
  ): Promise<{ worker: SwrkWorker; socket: Socket }>;
  /** One request on a fresh worker; a failure of the worker becomes a GatewayError. */
  exchange(req: CriuReq, options: ExchangeOptions, context: FailureContext): Promise<CriuResp>;
  /** The same for VERSION and FEATURE_CHECK, which a kept worker may answer. */
  exchangeKept(req: CriuReq, options: ExchangeOptions, context: FailureContext): Promise<CriuResp>;
  /**
   * One request on a fresh worker with `dir` as CRIU's images directory and `logFile` there as its
   * log. When CRIU refuses, `refused` (criuRefused by default) makes the error, with the log's tail.
   */
  exchangeIn(
    type: CriuReqType,
    options: CriuOptions | undefined,
    place: { dir: OpenDirectory; logFile: string },
    signal: AbortSignal | undefined,
    context: FailureContext,
    refused?: (resp: CriuResp, context: FailureContext) => Error,
  ): Promise<CriuResp>;
  /**
   * Takes the process tree under `pid` for one operation; FAILED_PRECONDITION naming the holder
   * when another operation holds that tree, a tree inside it, or one it is inside. Returns the
   * function that gives it back.
   */
  lockTree(pid: number, holder: TreeHolder): Promise<() => void>;
  /** CRIU's options for a request: the caller's, and the gateway's settings (its log level included). */
  criuOpts(options: CriuOptions | undefined, settings: GatewaySettings): criuOpts;
  /** The last lines of a log of CRIU's in `dir`; none when it cannot be read. */
  logTail(dir: string, file: string): Promise<string[]>;
}

/** The operation that holds a process tree. */
export interface TreeHolder {
  operationId: string;
  kind: string;
  checkpointId: string;
}

export function createOperationKit(deps: OperationsDeps, pool: WorkerPool): OperationKit {
  const trees = new Map<number, TreeHolder>();
  const optionClasses = (ctx: OperationContext) => ctx.guard?.optionClasses ?? deps.allowedOptionClasses;
  const mapped = async (req: CriuReq, context: FailureContext, run: () => Promise<CriuResp>) => {
    try {
      return await run();
    } catch (err) {
      if (err instanceof WorkerFailure) throw workerFailed(err, requestTypeName(req.type), context);
      throw err;
    }
  };
  return {
    deps,
    store: deps.store,
    pool,
    optionClasses,
    async acquire(signal, context, requestType) {
      try {
        return await pool.acquire(signal);
      } catch (err) {
        if (err instanceof WorkerFailure) throw workerFailed(err, requestType, context);
        throw err;
      }
    },
    async acquireServing(signal, context) {
      try {
        const { worker, stream } = await pool.acquireServing(signal);
        return { worker, socket: pageSocketOf(stream) };
      } catch (err) {
        if (err instanceof WorkerFailure) throw workerFailed(err, "DUMP", context);
        throw err;
      }
    },
    validate(input, ctx) {
      if (input.checkpointId !== undefined) ImageStore.validateId(input.checkpointId);
      if (input.parentCheckpointId) ImageStore.validateId(input.parentCheckpointId, "parent_checkpoint_id");
      checkOptionClasses(input.options, optionClasses(ctx));
      validateOptionValues(input.options);
    },
    exchange: (req, options, context) => mapped(req, context, () => pool.exchange(req, options)),
    exchangeKept: (req, options, context) => mapped(req, context, () => pool.exchangeKept(req, options)),
    async exchangeIn(type, options, { dir, logFile }, signal, context, refused = criuRefused) {
      const req: CriuReq = { type, opts: this.criuOpts(options, { imagesDirFd: dir.fd, logFile }) };
      const resp = await mapped(req, context, () => pool.exchange(req, { signal }));
      if (!resp.success) {
        context.logTail = await this.logTail(dir.path, logFile);
        throw refused(resp, context);
      }
      return resp;
    },
    async lockTree(pid, holder) {
      const lineage = await ancestorsOf(pid);
      const ancestorsOfHeld = new Map<number, number[]>();
      for (;;) {
        const unknown = [...trees.keys()].filter((root) => !ancestorsOfHeld.has(root));
        if (unknown.length === 0) break;
        for (const root of unknown) ancestorsOfHeld.set(root, await ancestorsOf(root));
      }
      // No await from here to the set: two operations on one tree cannot both pass.
      for (const [root, held] of trees) {
        const overlaps = root === pid || lineage.includes(root) || ancestorsOfHeld.get(root)?.includes(pid);
        if (!overlaps) continue;
        const where = root === pid ? "" : `, of the tree under pid ${root}`;
        throw new GatewayError(
          "FAILED_PRECONDITION",
          `the process tree of pid ${pid} is being checkpointed by operation ${held.operationId} (${held.kind} into checkpoint ${held.checkpointId}${where}); one operation per process tree at a time: retry once it has finished`,
        );
      }
      trees.set(pid, holder);
      return () => {
        if (trees.get(pid) === holder) trees.delete(pid);
      };
    },
    criuOpts: (options, settings) => toCriuOpts(options, { logLevel: deps.criuLogLevel, ...settings }),
    async logTail(dir, file) {
      try {
        return lastLines(await fs.readFile(join(dir, file), "utf8"), deps.logTailLines);
      } catch {
        return [];
      }
    },
  };
}
