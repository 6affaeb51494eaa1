// fs.pipe-max-size is one setting for the whole machine, and test files run at once: a file that
// needs it at some value holds it, through a lock every such file takes, until it gives it back.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./workload.js";

export const PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size";
const LOCK = join(tmpdir(), "criu-gateway-tests-pipe-max-size.lock");

/**
 * Waits for the setting to be free (another file may hold it for minutes), sets it to `value`,
 * and returns what gives it back as it was.
 */
export async function holdPipeMaxSize(value: number): Promise<() => void> {
  await waitFor(takeLock, "fs.pipe-max-size to be free of other test files", 15 * 60_000);
  const before = readFileSync(PIPE_MAX_SIZE, "utf8").trim();
  writeFileSync(PIPE_MAX_SIZE, String(value));
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    writeFileSync(PIPE_MAX_SIZE, before);
    rmSync(LOCK, { recursive: true, force: true });
  };
}

/** mkdir is atomic; a lock whose holder has died is taken over. */
function takeLock(): boolean {
  try {
    mkdirSync(LOCK);
    writeFileSync(join(LOCK, "pid"), String(process.pid));
    return true;
  } catch {
    let holder = 0;
    try {
      holder = Number(readFileSync(join(LOCK, "pid"), "utf8"));
    } catch {
      return false; // being written: its holder is alive
    }
    if (holder && !alive(holder)) rmSync(LOCK, { recursive: true, force: true });
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
