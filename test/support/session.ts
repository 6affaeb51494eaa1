// Drives CriuService.Session from the caller's side, answering callbacks as a test script says.
import type { ServiceError } from "@grpc/grpc-js";
import {
  CriuOptions,
  type CriuServiceClient,
  type NotifyCallback,
  type SessionResponse,
  type SessionStart,
} from "../../gen/criu/gateway/v1/gateway.js";

/** How to answer one callback: a reply, "silent" (never answer), or "cancel" (cancel the call). */
export type Answer = { success: boolean; external?: string[] } | "silent" | "cancel";

export interface SessionOutcome {
  operationId: string;
  callbacks: NotifyCallback[];
  result: SessionResponse | undefined;
  error: ServiceError | undefined;
}

/** A Session's start for a dump of `pid` into `checkpointId`, CRIU's callbacks put to the caller. */
export function dumpStart(
  checkpointId: string,
  options: Partial<CriuOptions> & { pid: number },
): SessionStart {
  return {
    dump: {
      checkpointId,
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ notifyScripts: true, ...options }),
    },
    callbackTimeoutMs: 0,
  };
}

export function runSession(
  client: CriuServiceClient,
  start: SessionStart,
  answer: (callback: NotifyCallback) => Answer | Promise<Answer> = () => ({ success: true }),
): Promise<SessionOutcome> {
  return new Promise((resolve) => {
    const outcome: SessionOutcome = { operationId: "", callbacks: [], result: undefined, error: undefined };
    const call = client.session();
    call.on("data", async (res: SessionResponse) => {
      if (res.started) outcome.operationId = res.started.operationId;
      if (res.dumpResult || res.restoreResult) outcome.result = res;
      if (res.callback) {
        outcome.callbacks.push(res.callback);
        const a = await answer(res.callback);
        if (a === "cancel") call.cancel();
        else if (a !== "silent") {
          call.write({
            notifyReply: { sequence: res.callback.sequence, success: a.success, external: a.external ?? [] },
          });
        }
      }
    });
    call.on("error", (err: ServiceError) => {
      outcome.error = err;
    });
    call.on("status", () => resolve(outcome));
    call.write({ start });
  });
}
