// grpc-js callback glue for unary calls, in one place: an AbortSignal that fires on cancellation,
// disconnection or deadline, errors mapped by toServiceError, and one log line per call.
import type { handleUnaryCall, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import { toServiceError } from "./errorStatus.js";

export interface CallContext {
  /** Aborted when the client cancels, disconnects, or the deadline passes. */
  signal: AbortSignal;
  peer: string;
}

export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

export function handleUnary<Req, Res>(
  method: string,
  logger: Logger,
  handler: UnaryHandler<Req, Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const started = process.hrtime.bigint();
    const controller = new AbortController();
    const onCancel = () => controller.abort(new Error("call cancelled by the client"));
    call.once("cancelled", onCancel);
    let deadlineTimer: NodeJS.Timeout | undefined;
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    if (Number.isFinite(deadlineMs)) {
      deadlineTimer = setTimeout(
        () => controller.abort(new Error("deadline exceeded")),
        Math.max(0, deadlineMs - Date.now()),
      );
    }
    const finish = (code: number, error?: unknown) => {
      call.removeListener("cancelled", onCancel);
      if (deadlineTimer) clearTimeout(deadlineTimer);
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.log(code === 0 ? "info" : "warn", "call", {
        method,
        peer: call.getPeer(),
        code,
        durationMs: Math.round(durationMs * 10) / 10,
        ...(error ? { error: String((error as Error).message ?? error) } : {}),
      });
    };
    handler(call.request, { signal: controller.signal, peer: call.getPeer() }).then(
      (response) => {
        finish(0);
        callback(null, response);
      },
      (err: unknown) => {
        const serviceError = toServiceError(err, (cause) =>
          logger.log("error", "internal error", { method, error: cause }),
        );
        finish(serviceError.code ?? 2, err);
        callback(serviceError, null);
      },
    );
  };
}
