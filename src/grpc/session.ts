// CriuService.Session: one dump, iterative dump or restore whose CRIU callbacks the caller answers
// on the stream. An async generator over the caller's messages: it yields what the caller is told
// (started, callbacks, pre-dump results, the result) while a reader takes the caller's answers.
import type { SessionRequest, SessionResponse, SessionStart } from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations, DumpResult, OperationContext } from "../domain/criuOperations.js";
import { GatewayError, invalidArgument } from "../domain/errors.js";
import { toDumpInput, toDumpResponse, toNotifyCallback } from "./apiMessages.js";
import { AsyncQueue } from "./asyncQueue.js";
import type { AdmittedContext, CallHandler } from "./callContext.js";
import { SessionAnswers } from "./sessionAnswers.js";

export interface SessionDeps {
  operations: CriuOperations;
  /** Default and maximum time a callback waits for the caller's answer. */
  callbackTimeoutMs: number;
  maxCallbackTimeoutMs: number;
}

export function createSession(
  deps: SessionDeps,
): CallHandler<SessionRequest, SessionResponse, AdmittedContext> {
  return async function* session(input, context) {
    // The call's admission judged the start message: it names what to run.
    const start = input.first.start as SessionStart;
    const timeoutMs = Math.min(start.callbackTimeoutMs || deps.callbackTimeoutMs, deps.maxCallbackTimeoutMs);
    // A caller that breaks the protocol fails the session as a cancellation would: the operation
    // is vetoed at CRIU's next callback, and the session ends with the caller's mistake.
    const broken = new AbortController();
    const signal = AbortSignal.any([context.signal, broken.signal]);
    let protocolError: unknown;
    const outbox = new AsyncQueue<SessionResponse>();
    const answers = new SessionAnswers((message) => outbox.push(message), signal);
    answers.read(input.rest).catch((err: unknown) => {
      protocolError ??= err;
      broken.abort(err);
    });
    const ctx: OperationContext = {
      ...context.operation,
      signal,
      onStarted: (operationId) => outbox.push({ started: { operationId } }),
      callbacks: {
        timeoutMs,
        ask: (question, askSignal) => answers.ask(question.sequence, toNotifyCallback(question), askSignal),
      },
    };
    const running = run(deps.operations, start, ctx, (preDump) => answers.nextStep(preDump, timeoutMs)).then(
      (result) => {
        // A protocol error after the operation's end still fails the session.
        if (protocolError) {
          outbox.end({ cause: protocolError });
          return;
        }
        outbox.push(result);
        outbox.end();
      },
      (err: unknown) => outbox.end({ cause: protocolError ?? err }),
    );
    try {
      yield* outbox;
    } finally {
      broken.abort(new GatewayError("CANCELLED", "the session ended"));
      await running.catch(() => {});
    }
  };
}

/** Runs what the start message names, and its result as the session's last message. */
async function run(
  operations: CriuOperations,
  start: SessionStart,
  ctx: OperationContext,
  nextStep: (preDump: DumpResult) => Promise<boolean>,
): Promise<SessionResponse> {
  if (start.dump) {
    return { dumpResult: toDumpResponse(await operations.dump(toDumpInput(start.dump), ctx)) };
  }
  if (start.iterativeDump) {
    const result = await operations.iterativeDump(toDumpInput(start.iterativeDump), ctx, nextStep);
    return { dumpResult: toDumpResponse(result) };
  }
  if (start.restore) {
    const result = await operations.restore(
      { checkpointId: start.restore.checkpointId, options: start.restore.options },
      ctx,
    );
    return { restoreResult: { pid: result.pid, statistics: result.statistics } };
  }
  throw invalidArgument("start must name a dump, an iterative_dump or a restore");
}
