// Calls that arrive in one task start one per event-loop turn, in order; a lone call at once.
import { AsyncLocalStorage } from "node:async_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { startInTurn } from "../../src/grpc/callTurns.js";

describe("startInTurn", () => {
  it("starts a call at once when none started in this turn", async () => {
    const started: number[] = [];
    startInTurn(() => started.push(1));
    expect(started).toEqual([1]);
    await nextTurn();
  });

  it("starts calls that arrive together one per turn, first come first served", async () => {
    const started: (number | string)[] = [];
    for (let i = 1; i <= 3; i++) startInTurn(() => started.push(i));
    expect(started).toEqual([1]);
    // Other work queued meanwhile runs between two starts: the loop is not held for all of them.
    setImmediate(() => started.push("other work"));
    while (started.length < 4) await nextTurn();
    expect(started).toEqual([1, 2, "other work", 3]);
    await nextTurn();
    await nextTurn();
    // The queue is empty again: the next call starts at once.
    startInTurn(() => started.push(4));
    expect(started).toEqual([1, 2, "other work", 3, 4]);
    await nextTurn();
  });

  it("runs a call started in a later turn in the async context it arrived in", async () => {
    const store = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    for (const call of ["a", "b", "c"]) store.run(call, () => startInTurn(() => seen.push(store.getStore())));
    while (seen.length < 3) await nextTurn();
    expect(seen).toEqual(["a", "b", "c"]);
    await nextTurn();
  });
});
