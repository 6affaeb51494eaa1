// A failed call as a person reads it: the status, the gateway's message, and CRIU's detail.
import { type ServiceError, status } from "@grpc/grpc-js";
import { errorDetailOf } from "../grpc/errorStatus.js";

export function describeServiceError(err: ServiceError): string {
  const lines = [`${status[err.code] ?? err.code}: ${err.details || err.message}`];
  const detail = errorDetailOf(err);
  if (detail) {
    if (detail.crErrno) lines.push(`  cr_errno: ${detail.crErrno}`);
    if (detail.workerExit) lines.push(`  worker: ${detail.workerExit}`);
    if (detail.logTail.length > 0)
      lines.push("  CRIU's log ends with:", ...detail.logTail.map((l) => `    ${l}`));
  }
  return lines.join("\n");
}
