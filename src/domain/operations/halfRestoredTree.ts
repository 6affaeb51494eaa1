// A restore whose CRIU worker died before the restored tree ran leaves that tree stuck in CRIU's
// restorer: every signal but SIGKILL blocked, its pids held, its memory mapped. This finds it and
// kills it.

import { promises as fs } from "node:fs";
import { processTree, startTicksOf } from "../processTree.js";

/** Linux's USER_HZ: /proc/PID/stat counts start times in these ticks since boot. */
const TICKS_PER_SECOND = 100;

/** Now, in /proc's clock ticks since boot, for telling processes started after it. */
export async function ticksSinceBoot(): Promise<number> {
  const uptime = Number((await fs.readFile("/proc/uptime", "utf8")).split(" ")[0]);
  return Math.floor(uptime * TICKS_PER_SECOND);
}

/**
 * Kills (SIGKILL) the tree under each candidate root that started at or after `sinceTicks`: the
 * root CRIU named in a callback, and the pids the checkpoint recorded, which CRIU restores as they
 * were. A process that is older than the restore, such as the original still running under that
 * pid, is never touched. Returns the pids killed.
 */
export async function killHalfRestored(candidates: Iterable<number>, sinceTicks: number): Promise<number[]> {
  const killed: number[] = [];
  for (const root of new Set(candidates)) {
    if (!Number.isInteger(root) || root <= 1) continue;
    const started = startTicksOf(root);
    if (started === undefined || started < sinceTicks) continue;
    for (const p of (await processTree(root).catch(() => [])).reverse()) {
      try {
        process.kill(p.pid, "SIGKILL");
        killed.push(p.pid);
      } catch {
        // Gone already.
      }
    }
  }
  return killed;
}
