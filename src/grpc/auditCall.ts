// The pipeline's audit step: one line per call, whatever its shape and however it ended.
import { status } from "@grpc/grpc-js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import { describeIdentity } from "../auth/identity.js";
import { optionClassesUsed } from "../domain/criuOptions.js";
import { GatewayError } from "../domain/errors.js";
import type { CallContext, CallHandler, CallMiddleware, CallRecord } from "./callContext.js";
import { abandonment } from "./callSignal.js";
import { statusCodeOf } from "./errorStatus.js";

/**
 * Audits the call once it has ended: what the steps inside learned (identity, grant, what it
 * touched) and its status. A call whose client went away is CANCELLED (DEADLINE_EXCEEDED when its
 * deadline passed), whatever that made the operation fail with: that is what the client saw.
 */
export function auditCall(gatekeeper: Gatekeeper): CallMiddleware<CallContext, CallContext> {
  return <Req, Res>(next: CallHandler<Req, Res>): CallHandler<Req, Res> =>
    async function* audited(input, context) {
      let failure: { cause: unknown } | undefined;
      try {
        yield* next(input, context);
      } catch (cause) {
        failure = { cause };
        throw cause;
      } finally {
        const { code, error } = outcome(context.signal, failure);
        writeAudit(gatekeeper, context.method, context.record, context.startedNs, code, error);
      }
    };
}

/** The audit line of one call: what it turned out to be, and how it ended. */
export function writeAudit(
  gatekeeper: Gatekeeper,
  method: string,
  { identity, admission, access }: CallRecord,
  startedNs: bigint,
  code: status,
  error: string | undefined,
): void {
  gatekeeper.audit({
    rpc: method,
    identity: identity ? describeIdentity(identity) : "unidentified",
    grant: admission?.grant.name ?? (identity ? gatekeeper.grantName(identity) : undefined),
    pid: access?.dumpRoot ?? access?.pid,
    checkpoint: access?.checkpoints?.[0]?.id ?? access?.restoreOf,
    optionClasses: optionClassesUsed(access?.options),
    result: status[code] ?? String(code),
    durationMs: Math.round((Number(process.hrtime.bigint() - startedNs) / 1e6) * 10) / 10,
    ...(error === undefined ? {} : { error }),
  });
}

function outcome(
  signal: AbortSignal,
  failure: { cause: unknown } | undefined,
): { code: status; error?: string } {
  const gone = abandonment(signal);
  if (gone) return { code: statusCodeOf(gone.code), error: gone.message };
  if (!failure) return { code: status.OK };
  const err = failure.cause;
  if (err instanceof GatewayError) return { code: statusCodeOf(err.code), error: err.message };
  // The audit log is the gateway's own: the real cause is kept there, never sent.
  return { code: status.INTERNAL, error: String((err as Error)?.message ?? err) };
}
