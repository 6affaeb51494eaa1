// What the operation modules share: the gateway's dependencies, the worker pool, and the few
// steps every operation takes the same way (one validation, one exchange that maps failures).

import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { type ExchangeOptions, WorkerFailure } from "../../criu/swrkWorker.js";
import { type CriuReq, type CriuReqType, type CriuResp, requestTypeName } from "../../criu/wire.js";
import type { WorkerPool } from "../../criu/workerPool.js";
import { criuRefused, type FailureContext, lastLines, workerFailed } from "../criuFailure.js";
import { checkOptionClasses, type OptionClass, toCriuOpts, validateOptionValues } from "../criuOptions.js";
import { ImageStore, type OpenDirectory } from "../imageStore.js";
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
  /** The last lines of a log of CRIU's in `dir`; none when it cannot be read. */
  logTail(dir: string, file: string): Promise<string[]>;
}

export function createOperationKit(deps: OperationsDeps, pool: WorkerPool): OperationKit {
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
    validate(input, ctx) {
      if (input.checkpointId !== undefined) ImageStore.validateId(input.checkpointId);
      if (input.parentCheckpointId) ImageStore.validateId(input.parentCheckpointId, "parent_checkpoint_id");
      checkOptionClasses(input.options, optionClasses(ctx));
      validateOptionValues(input.options);
    },
    exchange: (req, options, context) => mapped(req, context, () => pool.exchange(req, options)),
    exchangeKept: (req, options, context) => mapped(req, context, () => pool.exchangeKept(req, options)),
    async exchangeIn(type, options, { dir, logFile }, signal, context, refused = criuRefused) {
      const req: CriuReq = { type, opts: toCriuOpts(options, { imagesDirFd: dir.fd, logFile }) };
      const resp = await mapped(req, context, () => pool.exchange(req, { signal }));
      if (!resp.success) {
        context.logTail = await this.logTail(dir.path, logFile);
        throw refused(resp, context);
      }
      return resp;
    },
    async logTail(dir, file) {
      try {
        return lastLines(await fs.readFile(join(dir, file), "utf8"), deps.logTailLines);
      } catch {
        return [];
      }
    },
  };
}
