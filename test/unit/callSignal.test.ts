// A call's AbortSignal: aborted when its client cancels, also when that happened before the call
// was watched (a unary call is watched only once its turn comes).
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { abandonment, callSignal } from "../../src/grpc/callSignal.js";

function fakeCall(cancelled: boolean) {
  return Object.assign(new EventEmitter(), { cancelled, getDeadline: () => Number.POSITIVE_INFINITY });
}

describe("callSignal", () => {
  it("aborts as CANCELLED when the client cancels", () => {
    const call = fakeCall(false);
    const { signal, dispose } = callSignal(call);
    expect(signal.aborted).toBe(false);
    call.emit("cancelled");
    expect(abandonment(signal)?.code).toBe("CANCELLED");
    dispose();
  });

  it("starts aborted as CANCELLED when the client cancelled before the call was watched", () => {
    const { signal, dispose } = callSignal(fakeCall(true));
    expect(abandonment(signal)?.code).toBe("CANCELLED");
    dispose();
  });

  it("stops listening once disposed", () => {
    const call = fakeCall(false);
    const { signal, dispose } = callSignal(call);
    dispose();
    expect(call.listenerCount("cancelled")).toBe(0);
    call.emit("cancelled");
    expect(signal.aborted).toBe(false);
  });
});
