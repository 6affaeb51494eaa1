// CRIU's callbacks (NOTIFY) during a dump, pre-dump or restore, answered in one place: by the
// caller when it asked for them on a Session, by the gateway otherwise; each published as events.

import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import type { NotifyAnswer, NotifyEvent, SwrkWorker } from "../../criu/swrkWorker.js";
import { WorkerFailure } from "../../criu/swrkWorker.js";
import { type CriuReq, type CriuResp, requestTypeName } from "../../criu/wire.js";
import { inSpan } from "../../observability/tracing.js";
import { type FailureContext, workerFailed } from "../criuFailure.js";
import { GatewayError } from "../errors.js";
import type { AnsweredBy, EventPayload } from "../eventBus.js";
import type { CallbackQuestion, OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";

/**
 * Checks a CRIU callback (script name, and the pid where CRIU gives one) for the gateway; throws
 * to veto it, and CRIU then rolls back.
 */
export type CallbackGate = (script: string, pid: number | undefined) => Promise<void>;

/** Where a request's log is, for the tail a failure carries. */
export interface LogPlace {
  dir: string;
  file: string;
}

/** What the gateway does at each callback of one request, besides answering it. */
export interface CallbackHooks {
  /** Checks the callback before anyone answers it; throws to veto. */
  gate?: CallbackGate;
  /**
   * Runs once the callback is to be answered with success, just before CRIU is told so: the
   * last moment to veto (it throws), and the one to record what must outlast that answer.
   */
  commit?: CallbackGate;
}

/** Sends one request on the bridge's worker, `hooks` acting at its callbacks. */
export type CallbackSend = (
  req: CriuReq,
  context: FailureContext,
  log: LogPlace,
  hooks?: CallbackHooks,
) => Promise<CriuResp>;

/**
 * The requests of one operation on one worker (one request, or the steps of an iterative dump),
 * with their callbacks answered and a cancellation vetoed at CRIU's next callback. A callback the
 * gate refuses is answered with failure, and the request fails with the gate's reason rather than
 * with what CRIU made of the refusal. When the exchange itself fails, the error carries the tail
 * of CRIU's log for this request.
 */
export function callbackBridge(
  kit: OperationKit,
  worker: SwrkWorker,
  operationId: string,
  ctx: OperationContext,
  options: CriuOptions | undefined,
): CallbackSend {
  let hooks: CallbackHooks = {};
  let refusal: unknown;
  const onNotify = notifyHandler(kit, operationId, ctx, options?.notifyScripts === true, {
    gate: (script, pid) => hooks.gate?.(script, pid) ?? Promise.resolve(),
    commit: (script, pid) => hooks.commit?.(script, pid) ?? Promise.resolve(),
    refuse: (err) => {
      refusal ??= err;
    },
  });
  return async (req, context, log, stepHooks = {}) => {
    hooks = stepHooks;
    try {
      const resp = await worker.request(req, {
        signal: ctx.signal,
        onNotify,
        abortMode: "veto",
        vetoGraceMs: kit.deps.vetoGraceMs,
      });
      if (refusal) throw refusal;
      return resp;
    } catch (err) {
      if (refusal) throw refusal;
      const failure =
        err instanceof WorkerFailure ? workerFailed(err, requestTypeName(req.type), context) : err;
      const tail = await kit.logTail(log.dir, log.file);
      if (failure instanceof GatewayError && failure.criu && tail.length > 0) failure.criu.logTail = tail;
      throw failure;
    }
  };
}

/**
 * Like callbackBridge, for an operation of one request: each send runs on a fresh worker, closed
 * after it. With `exits`, the close is started and its promise put there for the operation to
 * await before it ends: CRIU exits a millisecond or so after its answer, and what the operation
 * does with the answer (publishing a dump) need not wait for that.
 */
export function freshWorkerBridge(
  kit: OperationKit,
  operationId: string,
  ctx: OperationContext,
  options: CriuOptions | undefined,
  exits?: Promise<unknown>[],
): CallbackSend {
  return async (req, context, log, hooks) => {
    const worker = await kit.acquire(ctx.signal, context, requestTypeName(req.type));
    try {
      return await callbackBridge(kit, worker, operationId, ctx, options)(req, context, log, hooks);
    } finally {
      const closed = worker.close();
      if (exits) exits.push(closed);
      else await closed;
    }
  };
}

/**
 * Answers each callback: refused when the gate throws (and `refuse` is told why), failed when the
 * caller has gone, else put to the caller or answered with success; a success is committed
 * (and may still turn into a veto) just before it is sent. A caller's answer that names
 * external resources (query-ext-files) needs the admin class: they reach CRIU's add_external just
 * as options.external does.
 */
function notifyHandler(
  kit: OperationKit,
  operationId: string,
  ctx: OperationContext,
  callerWantsCallbacks: boolean,
  check: { gate: CallbackGate; commit: CallbackGate; refuse(err: unknown): void },
) {
  let sequence = 0;
  const publish = (payload: EventPayload) => kit.deps.events.publish(operationId, payload);
  // A span per callback: its length is how long the gateway, or the caller, took to answer.
  return (event: NotifyEvent): Promise<NotifyAnswer> =>
    inSpan(`callback ${event.script}`, { "criu.callback": event.script }, (span) =>
      answerCallback(event).then((given) => {
        span.setAttribute("criu.callback.success", given.success);
        return given;
      }),
    );
  async function answerCallback(event: NotifyEvent): Promise<NotifyAnswer> {
    sequence++;
    const n = sequence;
    publish({ type: "callback", sequence: n, script: event.script, pid: event.pid });
    let answer: NotifyAnswer = { success: true };
    let by: AnsweredBy = "gateway";
    const callbacks = ctx.callbacks;
    let refused = false;
    try {
      await check.gate(event.script, event.pid);
    } catch (err) {
      refused = true;
      check.refuse(err);
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
      if (answer.success && (answer.external?.length ?? 0) > 0 && !kit.optionClasses(ctx).has("admin")) {
        check.refuse(
          new GatewayError(
            "PERMISSION_DENIED",
            `the notify_reply to ${event.script} names external resources, which CRIU adds as it would options.external, an option reserved to administrators; the ${event.script === "query-ext-files" ? "dump" : "operation"} was rolled back. Answer without external`,
          ),
        );
        answer = { success: false };
      }
    }
    if (answer.success) {
      try {
        await check.commit(event.script, event.pid);
      } catch (err) {
        check.refuse(err);
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
  }
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
