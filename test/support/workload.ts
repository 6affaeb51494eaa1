// Real processes to checkpoint: a counter that writes its count to a file, as a child of the test
// process (so it is reaped the moment it dies and its pid is free for the restore).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

// Single-threaded, no children, no pipes to the outside: everything CRIU can dump without options.
// SETUP is replaced by a workload's own top-level code (sockets, locks, files) that runs before
// the first count, with \`path\` (the count file) in scope.
//
// The count is written in place, fixed-width, through one descriptor held open: the file a dump
// records is always there with the same size, so a checkpoint restores again and again (a fresh
// file per count would be dumped open under a name the next restored process renames away).
const COUNTER = `
import os, sys, time
path, n = sys.argv[1], 0
SETUP
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
while True:
    os.pwrite(fd, str(n).ljust(20).encode(), 0)
    n += 1
    time.sleep(0.01)
`;

export interface Counter {
  pid: number;
  file: string;
  child: ChildProcess;
  /** Resolves when the child has exited and been reaped. */
  exited: Promise<void>;
  read(): number;
}

/**
 * Starts the counter in its own session (a dump needs the session leader inside the tree). It
 * counts only once `setup` has run, so a counting workload holds whatever its setup made.
 */
export async function startCounter(
  dir: string,
  name = "counter",
  options: { ownSession?: boolean; setup?: string; uid?: number; gid?: number } = {},
): Promise<Counter> {
  const file = join(dir, `${name}.txt`);
  const program = COUNTER.replace("SETUP", () => options.setup ?? "");
  const child = spawn("/usr/bin/python3", ["-c", program, file], {
    stdio: "ignore",
    detached: options.ownSession ?? true,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error("cannot start the counter workload");
  const counter: Counter = {
    pid,
    file,
    child,
    exited,
    read: () => Number(readFileSync(file, "utf8")),
  };
  await waitFor(() => existsSync(file) && counter.read() >= 3, "the counter to start counting");
  return counter;
}

/** Waits for a condition by polling it; fails after `timeoutMs`. Not a sleep: it ends as soon as the condition holds. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = condition();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Kills a process that is not our child (a restored one) and waits until its pid is free. */
export async function killAndWaitGone(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  await waitFor(() => !existsSync(`/proc/${pid}`), `pid ${pid} to be reaped`);
}
