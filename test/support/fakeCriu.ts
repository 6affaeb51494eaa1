// Test side of the scripted fake `criu swrk` (fake-criu.mjs): makes a criuBin for a scenario and
// reads back what the fake saw.
//
// SwrkWorker spawns `<criuBin> swrk 3` with the gateway's environment, so each scenario gets its
// own wrapper script that sets the fake's variables and execs it: tests never touch process.env,
// and the wrapper's pid is the fake's pid (exec), so /proc/<pid> checks see the real process.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const fakeCriuScript: string = fileURLToPath(new URL("./fake-criu.mjs", import.meta.url));

export type FakeScenario =
  | "ok"
  | "crash"
  | "exit-silently"
  | "garbage"
  | "truncated"
  | "wrong-type"
  | "slow"
  | "notify"
  | "notify-fd"
  | "ignore-eof"
  | "error-answer"
  | "criu-loop";

/** One line of the fake's log (FAKE_CRIU_LOG). */
export interface FakeLogEntry {
  event: "request" | "notify-answer" | "end" | "ignoring-eof";
  /** request: the criu_req type; notify-answer: the type of the answer. */
  type?: number;
  keepOpen?: boolean;
  script?: string;
  /** notify-answer: whether the client answered with notify_success = true. */
  notifySuccess?: boolean;
  errno?: number;
  /** request (criu-loop): the worker's pid, and the parent_img the request named. */
  pid?: number;
  parentImg?: string;
}

export interface FakeCriuOptions {
  /** After answering this callback, the notify scenario waits for SIGUSR1 before the next one. */
  pauseAfter?: string;
  /** The callbacks the notify scenario sends for a DUMP, in order. */
  notifyScripts?: readonly string[];
}

export interface FakeCriu {
  /** Pass as SwrkWorkerOptions.criuBin. */
  readonly bin: string;
  /** Everything the fake logged so far, oldest first. */
  log(): FakeLogEntry[];
}

const dirs: string[] = [];

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

export function fakeCriu(scenario: FakeScenario, options: FakeCriuOptions = {}): FakeCriu {
  const dir = mkdtempSync(join(tmpdir(), `fake-criu-${scenario}-`));
  dirs.push(dir);
  const logPath = join(dir, "log.jsonl");
  const vars: Record<string, string> = { FAKE_CRIU_SCENARIO: scenario, FAKE_CRIU_LOG: logPath };
  if (options.pauseAfter !== undefined) vars.FAKE_CRIU_PAUSE_AFTER = options.pauseAfter;
  if (options.notifyScripts !== undefined) vars.FAKE_CRIU_NOTIFY_SCRIPTS = options.notifyScripts.join(",");
  const bin = join(dir, "criu");
  const lines = [
    "#!/bin/sh",
    ...Object.entries(vars).map(([name, value]) => `export ${name}=${shellQuote(value)}`),
    `exec ${shellQuote(process.execPath)} ${shellQuote(fakeCriuScript)} "$@"`,
  ];
  writeFileSync(bin, `${lines.join("\n")}\n`, { mode: 0o755 });
  return {
    bin,
    log: () =>
      existsSync(logPath)
        ? readFileSync(logPath, "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => JSON.parse(line) as FakeLogEntry)
        : [],
  };
}

/** Removes every wrapper and log made so far (call from afterAll). */
export function removeFakeCriuDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
