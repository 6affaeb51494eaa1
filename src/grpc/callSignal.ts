// The AbortSignal of a call: aborted when the client cancels or goes away, or its deadline passes,
// with a reason that says which, so that what the call was doing is reported (and audited) as
// cancelled rather than as whatever failure the cancellation caused further down.
import type { Deadline } from "@grpc/grpc-js";
import { GatewayError } from "../domain/errors.js";

/** How close to its deadline a cancelled call counts as one whose deadline passed. */
const DEADLINE_SLACK_MS = 1_000;

/** The events of a grpc-js server call that tell its client is gone. */
export interface CancellableCall {
  /** grpc-js sets it when the client cancelled before anyone listened for "cancelled". */
  readonly cancelled?: boolean;
  getDeadline(): Deadline;
  on(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/**
 * A signal for the call; `goneOn` names the events beyond "cancelled" that mean the client went
 * away (a stream's "close" and "error"). `dispose` stops watching, before the gateway ends the call.
 */
export function callSignal(
  call: CancellableCall,
  goneOn: readonly string[] = [],
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  const expire = () => controller.abort(new GatewayError("DEADLINE_EXCEEDED", "the call's deadline passed"));
  // A client whose deadline passes cancels the call (RST_STREAM), as one that gives up does; the
  // clock tells them apart. The client's clock runs out a transit time before ours (our deadline
  // counts from when its request arrived), hence the slack.
  const gone = () => {
    if (Date.now() >= deadlineMs - DEADLINE_SLACK_MS) expire();
    else controller.abort(new GatewayError("CANCELLED", "the call was cancelled by the client"));
  };
  const timer = Number.isFinite(deadlineMs)
    ? setTimeout(expire, Math.max(0, deadlineMs - Date.now()))
    : undefined;
  const events = ["cancelled", ...goneOn];
  for (const event of events) call.on(event, gone);
  // A call watched only once its turn came may have been cancelled while it waited.
  if (call.cancelled) gone();
  return {
    signal: controller.signal,
    dispose() {
      if (timer) clearTimeout(timer);
      for (const event of events) call.removeListener(event, gone);
    },
  };
}

/** Whether the call ended because its client went away or its deadline passed. */
export function abandonment(signal: AbortSignal): GatewayError | undefined {
  return signal.aborted && signal.reason instanceof GatewayError ? signal.reason : undefined;
}
