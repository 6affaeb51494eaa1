// Without an SDK registered (this file registers none), spans cost nothing: inSpan just runs.
import { describe, expect, it } from "vitest";
import { inSpan, spansRecorded } from "../../src/observability/tracing.js";

describe("traces without an SDK", () => {
  it("are not recorded, and inSpan runs its work with a span that records nothing", async () => {
    expect(spansRecorded()).toBe(false);
    const result = await inSpan("admission", {}, async (span) => {
      expect(span.isRecording()).toBe(false);
      return 42;
    });
    expect(result).toBe(42);
  });

  it("pass on a failure, thrown or rejected, as a rejection", async () => {
    await expect(inSpan("publish", {}, async () => Promise.reject(new Error("disk full")))).rejects.toThrow(
      "disk full",
    );
    const throwing = inSpan("stage", {}, () => {
      throw new Error("no space");
    });
    await expect(throwing).rejects.toThrow("no space");
  });
});
