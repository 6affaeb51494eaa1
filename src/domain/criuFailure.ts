// One mapping from CRIU's answers and worker failures to GatewayError.
import { describeExit, type WorkerFailure } from "../criu/swrkWorker.js";
import { type CriuResp, requestTypeName } from "../criu/wire.js";
import { type CriuFailureDetail, type ErrorCode, GatewayError } from "./errors.js";

// Linux errno values CRIU reports in cr_errno.
const ESRCH = 3;
const EEXIST = 17;
const EBADRQC = 56;
const ENOTSUP = 95;

export interface FailureContext {
  /** "dump", "restore", …: what the caller asked for, in the words of the message. */
  action: string;
  pid?: number;
  checkpointId?: string;
  logTail: string[];
}

/**
 * CRIU answered success=false. The code follows cr_errno where it says something a caller can
 * act on; otherwise FAILED_PRECONDITION, since CRIU refused because of the state of the processes
 * or the host, and the details carry CRIU's own message and log.
 */
export function criuRefused(resp: CriuResp, context: FailureContext): GatewayError {
  const errno = resp.crErrno ?? 0;
  const errmsg = (resp.crErrmsg ?? "").trim();
  const reason = telling(errmsg, context.logTail);
  const said = reason ? `: ${reason}` : "";
  let code: ErrorCode = "FAILED_PRECONDITION";
  let message = `CRIU could not ${context.action}${said}. See the log tail in the error details.`;
  if (errno === ESRCH) {
    code = "NOT_FOUND";
    message = `no process to ${context.action}: the pid does not exist (or vanished during the dump)`;
  } else if (errno === EEXIST && context.action.startsWith("restore")) {
    code = "ALREADY_EXISTS";
    // CRIU's errmsg is the log's first error, often an unrelated warning: the log tail says more.
    message = `cannot ${context.action}: a pid the checkpoint needs is taken by a running process. Stop that process and retry; the log tail in the error details names the pid.`;
  } else if (errno === EBADRQC) {
    code = "INVALID_ARGUMENT";
    message = `CRIU rejected the options of the ${context.action}${said}`;
  } else if (errno === ENOTSUP) {
    message = `${context.action} is not supported on this host${said}`;
  }
  return new GatewayError(code, message, {
    requestType: requestTypeName(resp.type),
    crErrno: errno,
    crErrmsg: errmsg,
    logTail: context.logTail,
    workerExit: "",
  });
}

/**
 * Errors CRIU logs and then carries on from. CRIU's cr_errmsg is the first error it logged, which
 * can be one of these (it raises RLIMIT_NOFILE for itself and goes on without it where the host
 * denies that, as hosts without CAP_SYS_RESOURCE do); the reason a person needs is then further on.
 */
const HARMLESS = [/rlimit: Can't setup RLIMIT_NOFILE for self/];

/** CRIU's closing lines, which say that it failed but not why. */
const CONCLUSIONS = [/(Dumping|Restoring|Pre-dumping) FAILED/, /killed by signal/];

/** The error that says why: CRIU's own, unless it is harmless; then the first telling one logged. */
export function telling(errmsg: string, logTail: readonly string[]): string {
  if (errmsg && !HARMLESS.some((re) => re.test(errmsg))) return errmsg;
  for (const line of logTail) {
    const at = line.indexOf("Error (");
    if (at < 0) continue;
    const error = line.slice(at).trim();
    if (HARMLESS.some((re) => re.test(error)) || CONCLUSIONS.some((re) => re.test(error))) continue;
    return error;
  }
  return errmsg;
}

/** The exchange itself failed: no answer, a crash, garbage, or a cancellation. */
export function workerFailed(err: WorkerFailure, requestType: string, context: FailureContext): GatewayError {
  const detail: CriuFailureDetail = {
    requestType,
    crErrno: 0,
    crErrmsg: "",
    logTail: context.logTail.length > 0 ? context.logTail : lastLines(err.outputTail, 20),
    workerExit: err.exit && (err.exit.signal || err.exit.code) ? describeExit(err.exit) : "",
  };
  switch (err.kind) {
    case "aborted":
      return new GatewayError("CANCELLED", `the ${context.action} was cancelled`, detail, { cause: err });
    case "spawn":
      return new GatewayError("UNAVAILABLE", "CRIU cannot be started on the gateway's host", detail, {
        cause: err,
      });
    case "protocol":
      return new GatewayError(
        "INTERNAL",
        `CRIU's worker answered the ${context.action} with a malformed reply`,
        detail,
        {
          cause: err,
        },
      );
    case "too-large":
      return new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the ${context.action} request is too large for CRIU (${err.message.match(/\((\d+) bytes\)/)?.[1] ?? "?"} bytes); send fewer or shorter repeated options`,
        detail,
        { cause: err },
      );
    case "busy":
      return new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the gateway is at its limit of CRIU operations: ${err.message}. Retry later`,
        undefined,
        { cause: err },
      );
    case "ended":
      return new GatewayError(
        "INTERNAL",
        `CRIU's worker ended during the ${context.action} without answering (${describeExit(err.exit)})`,
        detail,
        { cause: err },
      );
  }
}

export function lastLines(text: string, n: number): string[] {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  // slice(-0) would be every line: log-tail-lines 0 means none.
  return n > 0 ? lines.slice(-n) : [];
}
