// The gateway's one error type. The gRPC side turns it into a status (src/grpc/errorStatus.ts);
// nothing else reaches a client: any other thrown error becomes INTERNAL with a generic message.

/** gRPC's canonical codes by name; the domain does not depend on grpc-js. */
export type ErrorCode =
  | "CANCELLED"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS";

/** What CRIU said, when a failure came from CRIU or its worker. Sent to the client in the details. */
export interface CriuFailureDetail {
  /** CRIU's request type, e.g. "DUMP". */
  requestType: string;
  /** CRIU's cr_errno (0 when it gave none). */
  crErrno: number;
  /** CRIU's cr_errmsg, when it gave one. */
  crErrmsg: string;
  /** The last lines of CRIU's log (or of the worker's output when there is no log). */
  logTail: string[];
  /** How the worker ended, when it ended abnormally. */
  workerExit: string;
}

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly code: ErrorCode,
    /** Sent to the client: says what went wrong and what to do, with no host internals. */
    message: string,
    readonly criu?: CriuFailureDetail,
    /** Logged by the gateway, never sent. */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function invalidArgument(message: string): GatewayError {
  return new GatewayError("INVALID_ARGUMENT", message);
}

export function permissionDenied(message: string): GatewayError {
  return new GatewayError("PERMISSION_DENIED", message);
}
