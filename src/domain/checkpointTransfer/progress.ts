// A transfer as an operation on the event bus: started, progress every few MiB, finished.
import { randomBytes } from "node:crypto";
import { GatewayError } from "../errors.js";
import type { EventBus } from "../eventBus.js";

/** Progress is published after at least this many more bytes, so events stay few. */
const PROGRESS_STEP_BYTES = 16 * 1024 * 1024;

export interface TransferTracker {
  readonly operationId: string;
  /** Records bytes done; publishes (and says so) when a step was crossed or all is done. */
  progress(bytesDone: number, bytesTotal: number): boolean;
  /** Publishes the outcome: OK without an error, else the error's code and message. */
  finish(error?: unknown): void;
}

export function trackTransfer(
  events: EventBus,
  kind: "export" | "import" | "push",
  caller: string,
  checkpointId: string,
): TransferTracker {
  const operationId = `${kind}-${randomBytes(6).toString("hex")}`;
  const started = Date.now();
  events.publish(operationId, { type: "started", kind, caller, pid: 0, checkpointId, interactive: false });
  let published = 0;
  let finished = false;
  return {
    operationId,
    progress(bytesDone, bytesTotal) {
      if (bytesDone - published < PROGRESS_STEP_BYTES && bytesDone < bytesTotal) return false;
      if (bytesDone === published && bytesDone !== 0) return false;
      published = bytesDone;
      events.publish(operationId, { type: "progress", bytesDone, bytesTotal });
      return true;
    },
    finish(error) {
      if (finished) return;
      finished = true;
      const code = error === undefined ? "OK" : error instanceof GatewayError ? error.code : "INTERNAL";
      const message =
        error === undefined ? "" : error instanceof GatewayError ? error.message : "internal error";
      events.publish(operationId, {
        type: "finished",
        code,
        message,
        durationMs: Date.now() - started,
        restoredPid: 0,
      });
    },
  };
}
