// Progress of long work on a terminal: one line redrawn in place, erased when the work ends so the
// result prints where it stood. Nothing at all when the output is not a terminal (a pipe, a file,
// a test), so scripts read only results.
import { formatSize } from "./output.js";

/** Where progress is drawn: process.stdout, or a fake one in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** Whether anything is drawn: work that costs something only to feed the line can skip it. */
  readonly visible: boolean;
  /** What the work is doing now, e.g. CRIU's current phase. */
  stage(text: string): void;
  /** How far it is, when that can be counted in bytes. */
  advance(doneBytes: number, totalBytes?: number): void;
  /** Erases the line; call it before printing the result, however the work ended. */
  done(): void;
}

export interface ProgressOptions {
  stream?: ProgressStream;
  /** Off with --json: the output is for a program even on a terminal. */
  enabled?: boolean;
  redrawMs?: number;
  now?: () => number;
}

export interface ProgressState {
  label: string;
  stage?: string | undefined;
  elapsedMs: number;
  doneBytes?: number | undefined;
  totalBytes?: number | undefined;
  /** Advances once per redraw; picks the spinner's frame. */
  frame: number;
}

const SPINNER = ["|", "/", "-", "\\"];
const BAR_WIDTH = 20;
/** Move to the start of the line and clear it. */
const ERASE = "\r\x1b[2K";

const QUIET: Progress = { visible: false, stage() {}, advance() {}, done() {} };

/** Starts drawing progress for `label` on a terminal; on anything else returns a progress that draws nothing. */
export function startProgress(label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stdout;
  if (options.enabled === false || !stream.isTTY) return QUIET;
  const now = options.now ?? Date.now;
  const started = now();
  const state: ProgressState = { label, elapsedMs: 0, frame: 0 };
  let finished = false;
  const draw = () => {
    if (finished) return;
    state.elapsedMs = now() - started;
    stream.write(`${ERASE}${fitToWidth(renderProgress(state), stream.columns)}`);
    state.frame++;
  };
  const timer = setInterval(draw, options.redrawMs ?? 100);
  // A progress line must never keep the process alive.
  timer.unref();
  draw();
  return {
    visible: true,
    stage(text) {
      state.stage = text;
      draw();
    },
    advance(doneBytes, totalBytes) {
      state.doneBytes = doneBytes;
      if (totalBytes !== undefined) state.totalBytes = totalBytes;
      draw();
    },
    done() {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      stream.write(ERASE);
    },
  };
}

/** One line of progress: a bar when the total is known, a spinner and the time taken otherwise. */
export function renderProgress(s: ProgressState): string {
  const parts = [s.label];
  if (s.totalBytes !== undefined && s.doneBytes !== undefined && s.totalBytes > 0) {
    const ratio = Math.min(1, s.doneBytes / s.totalBytes);
    const filled = Math.round(ratio * BAR_WIDTH);
    parts.push(
      `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${Math.floor(ratio * 100)}%`,
      `${formatSize(s.doneBytes)} of ${formatSize(s.totalBytes)}`,
    );
  } else {
    parts.unshift(SPINNER[s.frame % SPINNER.length]!);
    if (s.doneBytes !== undefined) parts.push(formatSize(s.doneBytes));
  }
  parts.push(`${(s.elapsedMs / 1000).toFixed(1)} s`);
  if (s.stage) parts.push(s.stage);
  return parts.join("  ");
}

/** Cut to the terminal's width, so the line never wraps (a wrapped line cannot be erased with \r). */
function fitToWidth(line: string, columns: number | undefined): string {
  return columns && line.length >= columns ? line.slice(0, Math.max(0, columns - 1)) : line;
}
