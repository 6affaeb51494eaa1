// Every operation runs under an id, between a "started" and a "finished" event.

import { randomBytes } from "node:crypto";
import { type ErrorCode, GatewayError } from "../errors.js";
import type { EventBus, OperationKind } from "../eventBus.js";
import type { OperationContext } from "./operationContext.js";

export interface OperationTarget {
  pid: number;
  checkpointId: string;
}

/** An operation that has started: its id, and how to say it ended. */
export interface StartedOperation {
  readonly id: string;
  /** Publishes its end with success. */
  succeeded(restoredPid?: number): void;
  /** Publishes its end with the code that `err` (or the caller's going away) stands for. */
  failed(err: unknown): void;
  /** Publishes its end with a given code. */
  finish(code: ErrorCode | "OK", message: string): void;
}

let operationCounter = 0;

function newOperationId(): string {
  operationCounter++;
  return `op-${operationCounter}-${randomBytes(4).toString("hex")}`;
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
  const publishEnd = (code: ErrorCode | "OK", message: string, restoredPid: number) =>
    events.publish(id, { type: "finished", code, message, durationMs: Date.now() - started, restoredPid });
  return {
    id,
    succeeded: (restoredPid = 0) => publishEnd("OK", "", restoredPid),
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

/** Runs one operation between its started and finished events. */
export async function trackOperation<T>(
  events: EventBus,
  kind: OperationKind,
  ctx: OperationContext,
  target: OperationTarget,
  run: (operationId: string) => Promise<T>,
  restoredPid: (result: T) => number = () => 0,
): Promise<T> {
  const operation = beginOperation(events, kind, ctx, target);
  try {
    const result = await run(operation.id);
    operation.succeeded(restoredPid(result));
    return result;
  } catch (err) {
    operation.failed(err);
    throw err;
  }
}
