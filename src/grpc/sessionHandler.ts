// CriuService.Session: one dump or restore whose CRIU callbacks the caller answers on the stream.
import type { handleBidiStreamingCall, ServerDuplexStream } from "@grpc/grpc-js";
import type { SessionRequest, SessionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import type { CallbackQuestion, CriuOperations, DumpResult, NotifyAnswer } from "../domain/criuOperations.js";
import { GatewayError, invalidArgument } from "../domain/errors.js";
import type { Identity } from "../domain/identity.js";
import type { Logger } from "../log.js";
import { dumpAccess, restoreAccess, toCheckpoint, toDumpInput } from "./criuService.js";
import { toServiceError } from "./errorStatus.js";
import type { AccessRequest, Admission, Gatekeeper } from "./gatekeeper.js";
import { auditCall, operationContext } from "./handleUnary.js";
import { assertDecoded, wireBytes } from "./undecodable.js";

export interface SessionDeps {
  operations: CriuOperations;
  logger: Logger;
  gatekeeper: Gatekeeper;
  /** Default and maximum time a callback waits for the caller's answer. */
  callbackTimeoutMs: number;
  maxCallbackTimeoutMs: number;
}

type Call = ServerDuplexStream<SessionRequest, SessionResponse>;

export function createSessionHandler(
  deps: SessionDeps,
): handleBidiStreamingCall<SessionRequest, SessionResponse> {
  return (call: Call) => {
    void runSession(call, deps);
  };
}

async function runSession(call: Call, deps: SessionDeps): Promise<void> {
  const { operations, logger } = deps;
  const controller = new AbortController();
  /** Callbacks put to the caller and not answered yet, by sequence. */
  const waiting = new Map<number, (answer: NotifyAnswer) => void>();
  /** In an iterative dump, the pre-dump waiting for the caller's `next`. */
  let awaitingStep: ((finalDump: boolean | undefined) => void) | undefined;
  let started = false;
  let inputEnded = false;
  let protocolError: GatewayError | undefined;

  const fail = (err: GatewayError) => {
    protocolError ??= err;
    controller.abort(err);
  };

  let identity: Identity | undefined;
  let admission: Admission | undefined;
  const firstRequest = new Promise<SessionRequest | undefined>((resolve) => {
    call.on("data", (req: SessionRequest) => {
      if (!started) {
        started = true;
        resolve(req);
        return;
      }
      try {
        assertDecoded(req);
        admission?.checkSize(wireBytes(req));
      } catch (err) {
        fail(err as GatewayError);
        return;
      }
      if (req.notifyReply) {
        const answer = waiting.get(req.notifyReply.sequence);
        if (!answer) {
          fail(
            invalidArgument(
              `notify_reply for sequence ${req.notifyReply.sequence}, which is not awaiting an answer`,
            ),
          );
          return;
        }
        waiting.delete(req.notifyReply.sequence);
        answer({ success: req.notifyReply.success, external: req.notifyReply.external });
        return;
      }
      if (req.next) {
        const step = awaitingStep;
        if (!step) {
          fail(invalidArgument("next answers a pre_dump_result of an iterative dump; none is awaiting it"));
          return;
        }
        awaitingStep = undefined;
        step(req.next.finalDump);
        return;
      }
      fail(
        invalidArgument(
          "a session takes one start message, then only notify_reply (and, iterating, next) messages",
        ),
      );
    });
    call.on("end", () => {
      inputEnded = true;
      resolve(undefined);
      // A caller that stopped sending can answer no more callbacks.
      for (const [seq, answer] of waiting) {
        waiting.delete(seq);
        answer({ success: false });
      }
      awaitingStep?.(undefined);
      awaitingStep = undefined;
    });
  });
  call.on("cancelled", () =>
    controller.abort(new GatewayError("CANCELLED", "the session was cancelled by the client")),
  );
  call.on("error", () => controller.abort(new Error("session stream failed")));

  const send = (message: SessionResponse) => {
    if (!call.writableEnded && !call.destroyed) call.write(message);
  };
  const startedAt = process.hrtime.bigint();
  let access: AccessRequest | undefined;
  const guard = { logger, gatekeeper: deps.gatekeeper };
  const finishWithError = (err: unknown) => {
    const status = toServiceError(err, (cause) =>
      logger.log("error", "internal error", { method: "Session", error: cause }),
    );
    admission?.release();
    auditCall(guard, "Session", identity, admission, access, startedAt, status.code ?? 2, status.details);
    if (!call.destroyed) call.emit("error", status);
  };

  /**
   * Reports a pre-dump and waits for the caller's `next`: true for the final dump. A caller that
   * goes away, stops sending or lets the timeout pass gets no further step: the session fails.
   */
  const askNextStep = (preDump: DumpResult, timeoutMs: number) =>
    new Promise<boolean>((resolve, reject) => {
      const signal = controller.signal;
      if (inputEnded || signal.aborted) {
        reject(new GatewayError("CANCELLED", "the caller stopped before choosing the next step"));
        return;
      }
      const timer = setTimeout(() => {
        awaitingStep = undefined;
        signal.removeEventListener("abort", onAbort);
        reject(
          new GatewayError(
            "DEADLINE_EXCEEDED",
            `no next message within ${timeoutMs} ms of the pre-dump; the iterative dump was abandoned`,
          ),
        );
      }, timeoutMs);
      const onAbort = () => settle(undefined);
      const settle = (finalDump: boolean | undefined) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        awaitingStep = undefined;
        if (finalDump === undefined) {
          reject(new GatewayError("CANCELLED", "the caller stopped before choosing the next step"));
        } else resolve(finalDump);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      awaitingStep = settle;
      send({
        preDumpResult: { checkpoint: toCheckpoint(preDump.checkpoint), statistics: preDump.statistics },
      });
    });

  try {
    const first = await firstRequest;
    assertDecoded(first);
    if (!first?.start) {
      throw invalidArgument(
        "a session starts with a start message naming a dump, an iterative_dump or a restore",
      );
    }
    const start = first.start;
    const who = deps.gatekeeper.identifyOrRefuse(call);
    identity = who.identity;
    if (who.refusal) throw who.refusal;
    // A session is checked as itself and as what it runs: an iterative dump pre-dumps, then dumps.
    let rpcs: string[];
    if (start.dump) {
      access = dumpAccess(start.dump);
      rpcs = ["Session", "Dump"];
    } else if (start.iterativeDump) {
      access = dumpAccess(start.iterativeDump);
      rpcs = ["Session", "PreDump", "Dump"];
    } else if (start.restore) {
      access = restoreAccess(start.restore);
      rpcs = ["Session", "Restore"];
    } else {
      throw invalidArgument("start must name a dump, an iterative_dump or a restore");
    }
    access.requestBytes = wireBytes(first);
    admission = await deps.gatekeeper.admit(identity, rpcs, access);
    const requested = start.callbackTimeoutMs || deps.callbackTimeoutMs;
    const timeoutMs = Math.min(requested, deps.maxCallbackTimeoutMs);
    const ctx = {
      ...operationContext(admission, controller.signal),
      onStarted: (operationId: string) => send({ started: { operationId } }),
      callbacks: {
        timeoutMs,
        ask: (q: CallbackQuestion, signal: AbortSignal) =>
          new Promise<NotifyAnswer>((resolve) => {
            if (inputEnded || signal.aborted) {
              resolve({ success: false });
              return;
            }
            waiting.set(q.sequence, resolve);
            // The answer may lose the race (timeout, cancellation): forget the question then.
            signal.addEventListener("abort", () => waiting.delete(q.sequence), { once: true });
            send({
              callback: {
                operationId: q.operationId,
                sequence: q.sequence,
                script: q.script,
                pid: q.pid,
                fdReceived: q.fdReceived,
                timeoutMs: q.timeoutMs,
              },
            });
          }),
      },
    };
    if (start.dump) {
      const result = await operations.dump(toDumpInput(start.dump), ctx);
      send({
        dumpResult: {
          checkpoint: toCheckpoint(result.checkpoint),
          restored: result.restored,
          statistics: result.statistics,
        },
      });
    } else if (start.iterativeDump) {
      const request = start.iterativeDump;
      const result = await operations.iterativeDump(toDumpInput(request), ctx, (preDump) =>
        askNextStep(preDump, timeoutMs),
      );
      send({
        dumpResult: {
          checkpoint: toCheckpoint(result.checkpoint),
          restored: result.restored,
          statistics: result.statistics,
        },
      });
    } else if (start.restore) {
      const result = await operations.restore(
        { checkpointId: start.restore.checkpointId, options: start.restore.options },
        ctx,
      );
      send({ restoreResult: { pid: result.pid, statistics: result.statistics } });
    } else {
      throw invalidArgument("start must name a dump, an iterative_dump or a restore");
    }
    if (protocolError) throw protocolError;
    admission.release();
    auditCall(guard, "Session", identity, admission, access, startedAt, 0);
    call.end();
  } catch (err) {
    finishWithError(protocolError ?? err);
  }
}
