// What the three transfer calls share with every other call: the caller identified and admitted
// by the gatekeeper, an AbortSignal that fires when the client goes away, the error mapped to a
// status, and one audit line when the call ends. They keep this glue of their own because they
// pace their streams themselves (a few chunks in flight, the import's read-ahead lowered), which
// the call pipeline's stream writers do not yet offer; each handler says when the call ends.
import { status } from "@grpc/grpc-js";
import type { AccessRequest, Admission } from "../auth/admission.js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import type { Identity } from "../auth/identity.js";
import { GatewayError } from "../domain/errors.js";
import type { Logger } from "../log.js";
import { writeAudit } from "./auditCall.js";
import { type CallTransport, forwardedClaim, transportIdentity } from "./callerIdentity.js";
import { toServiceError } from "./errorStatus.js";
import type { UnixPeers } from "./unixListener.js";

export interface TransferCallDeps {
  gatekeeper: Gatekeeper;
  unixPeers: UnixPeers;
  logger: Logger;
}

export interface TransferCall {
  readonly signal: AbortSignal;
  readonly identity: Identity;
  /** Identification's refusal (a forwarded identity not believed) is thrown here. */
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
  deps: TransferCallDeps,
): TransferCall {
  const started = process.hrtime.bigint();
  const controller = new AbortController();
  const onCancel = () =>
    controller.abort(new GatewayError("CANCELLED", "the call was cancelled by the client"));
  call.once("cancelled", onCancel);
  const direct = transportIdentity(call, deps.unixPeers);
  let identity: Identity = direct;
  let refusal: unknown;
  try {
    identity = deps.gatekeeper.identify(direct, forwardedClaim(call, deps.gatekeeper.forwardedHeader));
  } catch (err) {
    refusal = err;
  }
  let admission: Admission | undefined;
  let wanted: AccessRequest | undefined;
  let ended = false;
  const audit = (code: status, error?: string) =>
    writeAudit(deps.gatekeeper, method, { identity, admission, access: wanted }, started, code, error);
  return {
    signal: controller.signal,
    identity,
    async admit(access) {
      if (refusal) throw refusal;
      wanted = access;
      admission = await deps.gatekeeper.admit(identity, [method], access);
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
        audit(status.OK);
        return undefined;
      }
      const serviceError = toServiceError(cause, (internal) =>
        deps.logger.log("error", "internal error", { method, error: internal }),
      );
      audit(serviceError.code ?? status.UNKNOWN, serviceError.details);
      return serviceError;
    },
  };
}
