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

// A session leader outside the counter's tree: it starts a new session, forks the counter into it
// and waits for it, exiting when the counter does. The counter's parent reaps it at once, as the
// test process would. The leader is ours, so it is inside our pid namespace, wherever the test
// runs: a test runner's own session leader may be in a parent pid namespace, which CRIU refuses
// for another reason (no shell_job helps with that).
const SESSION_LEADER = `
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable] + sys.argv[1:])
_, status = os.waitpid(pid, 0)
sys.exit(1 if status else 0)
`;

export interface Counter {
  /** The counting process: the root of the tree to dump. */
  pid: number;
  file: string;
  /** The process we started: the counter itself, or its session leader (session "outside"). */
  child: ChildProcess;
  /** Resolves when the counter has exited and been reaped. */
  exited: Promise<void>;
  read(): number;
  /** Kills the counter, and its session leader if it has one of its own. */
  kill(): void;
}

/**
 * Starts the counter. With `session: "own"` (the default) it leads its own session, as a dump
 * without shell_job needs; with `"outside"` its session leader is its parent, a process outside
 * the tree a dump of the counter covers. It counts only once `setup` has run, so a counting
 * workload holds whatever its setup made.
 */
export async function startCounter(
  dir: string,
  name = "counter",
  options: {
    session?: "own" | "outside";
    setup?: string;
    uid?: number;
    gid?: number;
    /** "none": the counter runs without any capability, even as root (an empty bounding set). */
    /**
     * "none": the counter runs without any capability, even as root (an empty bounding set); a
     * list: with only those, like a container's process (names as setpriv spells them: "chown").
     */
    capabilities?: "none" | readonly string[];
  } = {},
): Promise<Counter> {
  const file = join(dir, `${name}.txt`);
  const program = COUNTER.replace("SETUP", () => options.setup ?? "");
  const outside = options.session === "outside";
  const args = ["-c", program, file];
  const python = ["/usr/bin/python3", ...(outside ? ["-c", SESSION_LEADER, ...args] : args)];
  const caps = options.capabilities === "none" ? [] : options.capabilities;
  const bounding = ["-all", ...(caps ?? []).map((c) => `+${c}`)].join(",");
  const argv =
    caps === undefined
      ? python
      : ["/usr/bin/setpriv", "--inh-caps=-all", `--bounding-set=${bounding}`, "--", ...python];
  // detached: the child calls setsid(), so it leads a new session and process group.
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: "ignore",
    detached: true,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const started = child.pid;
  if (started === undefined) throw new Error("cannot start the counter workload");
  let pid = started;
  if (outside) {
    const children = `/proc/${started}/task/${started}/children`;
    await waitFor(
      () => readFileSync(children, "utf8").trim() !== "",
      "the session leader to fork the counter",
    );
    pid = Number(readFileSync(children, "utf8").trim().split(" ")[0]);
  }
  const counter: Counter = {
    pid,
    file,
    child,
    exited,
    read: () => Number(readFileSync(file, "utf8")),
    // The whole process group: the counter, and the leader when there is one.
    kill: () => {
      try {
        process.kill(-started, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
  await waitFor(() => existsSync(file) && counter.read() >= 3, "the counter to start counting");
  return counter;
}

/**
 * Waits for a condition by polling it; fails after `timeoutMs`. Not a sleep: it ends as soon as the
 * condition holds. An asynchronous condition (a connection, a request) is awaited before the next poll.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await condition();
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
