// The progress line: drawn in place on a terminal and erased before the result; nothing at all
// on a pipe or file, or with --json. The stream is a fake with the shape of process.stdout.
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { renderProgress, startProgress } from "../../src/cli/progress.js";

function fakeStream(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  return { isTTY, columns, writes, write: (text: string) => writes.push(text) };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("progress on a terminal", () => {
  test("draws at once, redraws in place with the time taken and the stage, and erases itself when done", () => {
    const stream = fakeStream(true);
    let now = 1_000;
    const progress = startProgress("dumping pid 42 as demo", { stream, now: () => now, redrawMs: 100 });
    expect(progress.visible).toBe(true);
    expect(stream.writes).toEqual(["\r\x1b[2K|  dumping pid 42 as demo  0.0 s"]);
    now += 1_500;
    vi.advanceTimersByTime(100);
    expect(stream.writes.at(-1)).toBe("\r\x1b[2K/  dumping pid 42 as demo  1.5 s");
    progress.stage("post-dump");
    expect(stream.writes.at(-1)).toBe("\r\x1b[2K-  dumping pid 42 as demo  1.5 s  post-dump");
    progress.done();
    expect(stream.writes.at(-1)).toBe("\r\x1b[2K");
    const count = stream.writes.length;
    vi.advanceTimersByTime(1_000);
    progress.done();
    expect(stream.writes).toHaveLength(count);
  });

  test("cuts the line to the terminal's width, so it never wraps", () => {
    const stream = fakeStream(true, 20);
    startProgress("copying a checkpoint with a long name", { stream }).done();
    expect(stream.writes[0]).toBe("\r\x1b[2K|  copying a checkp");
  });
});

describe("progress elsewhere", () => {
  test("writes nothing when the output is not a terminal", () => {
    const stream = fakeStream(false);
    const progress = startProgress("dumping", { stream });
    progress.stage("post-dump");
    progress.advance(10, 100);
    vi.advanceTimersByTime(1_000);
    progress.done();
    expect(progress.visible).toBe(false);
    expect(stream.writes).toEqual([]);
  });

  test("writes nothing when disabled on a terminal (--json)", () => {
    const stream = fakeStream(true);
    startProgress("dumping", { stream, enabled: false }).done();
    expect(stream.writes).toEqual([]);
  });
});

describe("renderProgress", () => {
  test("a bar and the sizes when the total is known", () => {
    const line = renderProgress({
      label: "copying",
      elapsedMs: 2_000,
      doneBytes: 512 * 1024,
      totalBytes: 2 * 1024 * 1024,
      frame: 0,
    });
    expect(line).toBe("copying  [#####---------------] 25%  512.0 KiB of 2.0 MiB  2.0 s");
  });

  test("a spinner and the bytes so far when the total is not known", () => {
    expect(renderProgress({ label: "exporting", elapsedMs: 300, doneBytes: 2048, frame: 5 })).toBe(
      "/  exporting  2.0 KiB  0.3 s",
    );
  });
});
