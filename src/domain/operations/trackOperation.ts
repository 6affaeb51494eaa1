// Every operation runs under an id, between a "started" and a "finished" event.

import { randomBytes } from "node:crypto";
import type { DumpStatistics, RestoreStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { asDiskFull } from "../diskFull.js";
import { type ErrorCode, GatewayError } from "../errors.js";
import type { EventBus, OperationKind } from "../eventBus.js";
import type { OperationContext } from "./operationContext.js";

export interface OperationTarget {
  pid: number;
  checkpointId: string;
}

/** What a successful operation's "finished" event says beyond its success. */
export interface Outcome {
  restoredPid?: number;
  dumpStatistics?: DumpStatistics | undefined;
  restoreStatistics?: RestoreStatistics | undefined;
}

/** An operation that has started: its id, and how to say it ended. */
export interface StartedOperation {
  readonly id: string;
  /** Publishes its end with success. */
  succeeded(outcome?: Outcome): void;
  /** Publishes its end with the code that `err` (or the caller's going away) stands for. */
  failed(err: unknown): void;
  /** Publishes its end with a given code. */
  finish(code: ErrorCode | "OK", message: string): void;
}

let operationCounter = 0;
/** Drawn once: with the counter it tells this gateway's ids from those of its earlier runs. */
const runTag = randomBytes(4).toString("hex");

function newOperationId(): string {
  operationCounter++;
  return `op-${operationCounter}-${runTag}`;
}

/** Gives an operation its id, tells the caller, and publishes that it started. */
export function beginOperation(
  events: EventBus,
  kind: OperationKind,
  ctx: OperationContext,
  target: OperationTarget,
): StartedOperation {
  const id = newOperationId();
  const started = Date.now();
  ctx.onStarted?.(id);
  events.publish(id, {
    type: "started",
    kind,
    caller: ctx.caller,
    pid: target.pid,
    checkpointId: target.checkpointId,
    interactive: ctx.callbacks !== undefined,
  });
  const publishEnd = (code: ErrorCode | "OK", message: string, restoredPid: number, outcome: Outcome = {}) =>
    events.publish(id, {
      type: "finished",
      code,
      message,
      durationMs: Date.now() - started,
      restoredPid,
      dumpStatistics: outcome.dumpStatistics,
      restoreStatistics: outcome.restoreStatistics,
    });
  return {
    id,
    succeeded: (outcome = {}) => publishEnd("OK", "", outcome.restoredPid ?? 0, outcome),
    finish: (code, message) => publishEnd(code, message, 0),
    failed(err) {
      // A caller that went away vetoes at CRIU's next callback, and CRIU then reports a failure
      // of its own; what ended the operation was the cancellation (or deadline), so say that.
      const reason: unknown = ctx.signal?.aborted ? ctx.signal.reason : undefined;
      if (reason instanceof GatewayError) publishEnd(reason.code, reason.message, 0);
      else if (ctx.signal?.aborted) publishEnd("CANCELLED", "the caller went away", 0);
      else if (err instanceof GatewayError) publishEnd(err.code, err.message, 0);
      else publishEnd("INTERNAL", "internal error", 0);
    },
  };
}

/**
 * Runs one operation between its started and finished events. A full image store, whoever hit
 * it, ends it as RESOURCE_EXHAUSTED.
 */
export async function trackOperation<T>(
  kit: { deps: { events: EventBus }; store: { root: string } },
  kind: OperationKind,
  ctx: OperationContext,
  target: OperationTarget,
  run: (operationId: string) => Promise<T>,
  outcome: (result: T) => Outcome = () => ({}),
): Promise<T> {
  const operation = beginOperation(kit.deps.events, kind, ctx, target);
  try {
    const result = await run(operation.id);
    operation.succeeded(outcome(result));
    return result;
  } catch (err) {
    const failure = await asDiskFull(err, kit.store.root);
    operation.failed(failure);
    throw failure;
  }
}
