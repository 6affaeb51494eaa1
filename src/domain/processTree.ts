// The processes a dump would cover, read from /proc: the tree under a root pid, each with the uids
// it runs as and its cgroup. Authorization checks every one of them, not only the root.
//
// /proc is read synchronously: its files are made by the kernel on reading and never wait for a
// disk, so a read takes microseconds, while each step through the thread pool (open, fstat, read,
// close) costs a round trip; the post-dump check, run while CRIU keeps the tree frozen, took
// milliseconds that way. A large tree yields to the event loop every PROCESSES_PER_TURN processes.
import { readdirSync, readFileSync, statSync } from "node:fs";

export interface ProcessRecord {
  pid: number;
  /** Real, effective, saved and filesystem uid, as /proc/PID/status lists them. */
  uids: number[];
  /** The cgroup v2 path ("/system.slice/x.service"), "" where the process has none. */
  cgroup: string;
  /** Real, effective, saved and filesystem gid. Absent in records older than these fields. */
  gids?: number[];
  /** Supplementary groups. */
  groups?: number[];
  /** Effective capabilities, as /proc/PID/status prints them (hex). */
  capEff?: string;
  /**
   * False when the process made itself non-dumpable (PR_SET_DUMPABLE 0, as setuid programs and key
   * agents are): the kernel then gives its /proc files to root. Undefined when /proc cannot
   * tell (a process running as root).
   */
  dumpable?: boolean;
}

/** More processes than this under one root is not a tree anyone means to dump. */
export const MAX_TREE_PROCESSES = 100_000;

/** How many processes processTree reads before it lets the event loop run. */
const PROCESSES_PER_TURN = 64;

/** One process's record, or undefined when it does not exist (or vanished while being read). */
export async function readProcess(pid: number): Promise<ProcessRecord | undefined> {
  return readProcessNow(pid);
}

function readProcessNow(pid: number): ProcessRecord | undefined {
  let status: string;
  let cgroups: string;
  let owner: number;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
    cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    owner = statSync(`/proc/${pid}/status`).uid;
  } catch {
    return undefined;
  }
  // cgroup v2: the one line "0::/path"; on a v1 or hybrid host there is no unified path.
  const unified = /^0::(.*)$/m.exec(cgroups);
  const uids = numbers(status, "Uid");
  const euid = uids[1];
  return {
    pid,
    uids,
    cgroup: unified?.[1] ?? "",
    gids: numbers(status, "Gid"),
    groups: numbers(status, "Groups"),
    capEff: /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "",
    ...(euid === undefined || euid === 0 ? {} : { dumpable: owner === euid }),
  };
}

/** The numbers of one /proc/PID/status line ("Uid:\t0\t0\t0\t0"). */
function numbers(status: string, key: string): number[] {
  const line = new RegExp(`^${key}:(.*)$`, "m").exec(status);
  return (line?.[1] ?? "")
    .trim()
    .split(/\s+/)
    .filter((w) => w !== "")
    .map(Number)
    .filter((n) => Number.isInteger(n));
}

/**
 * The tree rooted at `rootPid`, root first. Children come from every thread's children list, as
 * CRIU collects them. A process that exits while we walk is left out; one forked afterwards is
 * not seen: callers re-check the frozen tree before a dump is published.
 */
export async function processTree(rootPid: number): Promise<ProcessRecord[]> {
  const out: ProcessRecord[] = [];
  const seen = new Set<number>();
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    if (seen.size % PROCESSES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    const record = readProcessNow(pid);
    if (!record) continue;
    out.push(record);
    if (out.length > MAX_TREE_PROCESSES) {
      throw new Error(`the tree under pid ${rootPid} has more than ${MAX_TREE_PROCESSES} processes`);
    }
    queue.push(...childrenOf(pid));
  }
  return out;
}

function childrenOf(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
      for (const word of text.split(/\s+/)) if (word) children.push(Number(word));
    } catch {
      // The thread ended while we looked.
    }
  }
  return children;
}

/**
 * A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which tells it
 * from a later process given the same pid; undefined when it is gone (or the line unreadable).
 */
export function startTicksOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name, which may hold spaces and parentheses: starttime is the 20th field.
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** The pids from `pid`'s parent up to init, read from /proc. */
export async function ancestorsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  let current = pid;
  for (let i = 0; i < 4096 && current > 1; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${current}/stat`, "utf8");
    } catch {
      break;
    }
    // The command name may contain spaces and parentheses: the ppid follows the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid) || ppid <= 0) break;
    out.push(ppid);
    current = ppid;
  }
  return out;
}
