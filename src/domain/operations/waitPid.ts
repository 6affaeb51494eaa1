// WaitPid: CRIU's WAIT_PID, which waits for a child of the worker.

import { CriuReqType } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { GatewayError, invalidArgument } from "../errors.js";
import { decodeWaitStatus, type WaitOutcome } from "../waitStatus.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import { pathExists } from "./pathExists.js";
import { trackOperation } from "./trackOperation.js";

export function createWaitPid(kit: OperationKit) {
  return function waitPid(pid: number, ctx: OperationContext): Promise<WaitOutcome> {
    return trackOperation(kit.deps.events, "wait-pid", ctx, { pid, checkpointId: "" }, async () => {
      // waitpid() would read 0 and negative pids as "any child" and process groups.
      if (!Number.isInteger(pid) || pid <= 0) throw invalidArgument(`pid must be a positive pid, not ${pid}`);
      if (!(await pathExists(`/proc/${pid}`)))
        throw new GatewayError("NOT_FOUND", `no process with pid ${pid}`);
      const context: FailureContext = { action: `wait for pid ${pid}`, pid, logTail: [] };
      const resp = await kit.exchange({ type: CriuReqType.WAIT_PID, pid }, { signal: ctx.signal }, context);
      if (!resp.success || resp.status === undefined) {
        // CRIU sends no cr_errno here (it sets the value but not its presence flag); with the
        // process shown to exist above, the cause is ECHILD: it is not the worker's child.
        const err = criuRefused(resp, context);
        throw new GatewayError(
          "FAILED_PRECONDITION",
          `CRIU cannot wait for pid ${pid}: waitpid() works only for a process's own children, and the CRIU worker that runs each gateway call is a fresh process with no children. Watch the process by other means (it is reaped by its own parent)`,
          err.criu,
        );
      }
      return decodeWaitStatus(resp.status);
    });
  };
}
