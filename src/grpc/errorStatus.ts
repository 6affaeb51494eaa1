// The one place where errors become gRPC statuses.
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { ErrorDetail } from "../../gen/criu/gateway/v1/gateway.js";
import { Status } from "../../gen/google/rpc/status.js";
import { type ErrorCode, GatewayError } from "../domain/errors.js";

export const ERROR_DETAIL_TYPE_URL = "type.googleapis.com/criu.gateway.v1.ErrorDetail";
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const CODES: Record<ErrorCode, status> = {
  CANCELLED: status.CANCELLED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  ABORTED: status.ABORTED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
  UNAVAILABLE: status.UNAVAILABLE,
  DATA_LOSS: status.DATA_LOSS,
};

export function statusCodeOf(code: ErrorCode): status {
  return CODES[code];
}

/**
 * A GatewayError keeps its code and message, with CRIU's detail in a google.rpc.Status trailer.
 * Anything else is a bug or an unexpected host failure: INTERNAL with a generic message, and the
 * real error only in the gateway's log (`onInternal`), never sent.
 */
export function toServiceError(err: unknown, onInternal: (err: unknown) => void): Partial<ServiceError> {
  if (!(err instanceof GatewayError)) {
    onInternal(err);
    return { code: status.INTERNAL, details: "internal error in the gateway; its log has the cause" };
  }
  const code = CODES[err.code];
  const metadata = new Metadata();
  if (err.criu) {
    const detail = ErrorDetail.encode({
      requestType: err.criu.requestType,
      crErrno: err.criu.crErrno,
      crErrmsg: err.criu.crErrmsg,
      logTail: err.criu.logTail,
      workerExit: err.criu.workerExit,
    }).finish();
    const rich = Status.encode({
      code,
      message: err.message,
      details: [{ typeUrl: ERROR_DETAIL_TYPE_URL, value: Buffer.from(detail) }],
    }).finish();
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(rich));
  }
  return { code, details: err.message, metadata };
}

/** Reads the ErrorDetail back from a failed call's trailers (for clients written in TypeScript). */
export function errorDetailOf(err: { metadata?: Metadata }): ErrorDetail | undefined {
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!raw || typeof raw === "string") return undefined;
  const rich = Status.decode(raw);
  const any = rich.details.find((d) => d.typeUrl === ERROR_DETAIL_TYPE_URL);
  return any ? ErrorDetail.decode(any.value) : undefined;
}
