// Calls start one per event-loop turn. grpc-js hands over every call whose request arrived in one
// read in a single task (100 concurrent calls from one client arrive together), so starting each at
// once would run all their handlers back to back and hold the loop for all of them; started one
// per turn, timers and I/O (CRIU's callbacks, other calls' replies) are served in between. A call
// that finds no other started in the same turn starts at once, so a lone call waits for nothing.

import { AsyncResource } from "node:async_hooks";

const waiting: (() => void)[] = [];
/** Whether a call started in the current turn, and so the next one waits for the following turn. */
let turnTaken = false;

export function startInTurn(start: () => void): void {
  if (turnTaken) {
    // Run later in the async context it was queued in, not in that of the turn that runs it: a
    // call's trace context (its RPC span, made active by the telemetry interceptor) goes with it.
    // (A resource and runInAsyncScope: AsyncResource.bind costs ~15 µs a call, this ~0.3 µs.)
    const queuedIn = new AsyncResource("criu-gateway.turn");
    waiting.push(() => queuedIn.runInAsyncScope(start));
    return;
  }
  turnTaken = true;
  setImmediate(nextTurn);
  start();
}

function nextTurn(): void {
  const start = waiting.shift();
  if (start === undefined) {
    turnTaken = false;
    return;
  }
  setImmediate(nextTurn);
  start();
}
