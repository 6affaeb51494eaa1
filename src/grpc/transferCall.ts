// What the three transfer calls share with every other call: the caller identified and admitted
// by the gatekeeper, an AbortSignal that fires when the client goes away, the error mapped to a
// status, and one audit line when the call ends. Streaming calls get no callback from grpc-js
// when they end, so each handler says when with `end`.
import { status } from "@grpc/grpc-js";
import { GatewayError } from "../domain/errors.js";
import type { Identity } from "../domain/identity.js";
import { toServiceError } from "./errorStatus.js";
import type { AccessRequest, Admission, CallTransport } from "./gatekeeper.js";
import { auditCall, type GuardDeps } from "./handleUnary.js";

export interface TransferCall {
  readonly signal: AbortSignal;
  readonly identity: Identity;
  /** Identification's refusal (a forwarded identity not believed), thrown at admission. */
  admit(access: AccessRequest): Promise<Admission>;
  /**
   * Ends the call's bookkeeping once: audits its outcome and gives back its slot. Returns the
   * status to send for an error, undefined for success.
   */
  end(error?: unknown): ReturnType<typeof toServiceError> | undefined;
}

export function beginTransferCall(
  method: string,
  call: CallTransport & {
    once(event: "cancelled", listener: () => void): unknown;
    removeListener(event: "cancelled", listener: () => void): unknown;
  },
  deps: GuardDeps,
): TransferCall {
  const started = process.hrtime.bigint();
  const controller = new AbortController();
  const onCancel = () =>
    controller.abort(new GatewayError("CANCELLED", "the call was cancelled by the client"));
  call.once("cancelled", onCancel);
  const { identity, refusal } = deps.gatekeeper.identifyOrRefuse(call);
  let admission: Admission | undefined;
  let wanted: AccessRequest | undefined;
  let ended = false;
  return {
    signal: controller.signal,
    identity,
    async admit(access) {
      if (refusal) throw refusal;
      wanted = access;
      admission = await deps.gatekeeper.admit(identity, method, access);
      return admission;
    },
    end(error) {
      if (ended) return undefined;
      ended = true;
      call.removeListener("cancelled", onCancel);
      admission?.release();
      // A call the client abandoned ended because of that, whatever failed next.
      const cause = controller.signal.aborted ? controller.signal.reason : error;
      if (error === undefined && !controller.signal.aborted) {
        auditCall(deps, method, identity, admission, wanted, started, status.OK);
        return undefined;
      }
      const serviceError = toServiceError(cause, (internal) =>
        deps.logger.log("error", "internal error", { method, error: internal }),
      );
      auditCall(
        deps,
        method,
        identity,
        admission,
        wanted,
        started,
        serviceError.code ?? status.UNKNOWN,
        serviceError.details,
      );
      return serviceError;
    },
  };
}
