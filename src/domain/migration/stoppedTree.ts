// A process tree held stopped (SIGSTOP) while a migration decides where it lives: continued where
// it is when the migration fails before the switch, killed once the other host runs it.
//
// While it is held, a record in the image store says what to do with it should the gateway die
// first: the source's copy is continued (the target, losing the call, kills what it restored),
// the target's restored copy is killed (the source's goes on). The record goes before the switch
// is made, so that a restart never continues a copy the other host runs.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { startTicksOf } from "../processTree.js";

/** What a restart does with a tree a migration held stopped when the gateway died. */
export type LeftStopped = "continue" | "kill";

interface TreeRecord {
  onRestart: LeftStopped;
  /** Each process, with its start time in clock ticks since boot: a pid reused since is not it. */
  processes: { pid: number; startTicks: number }[];
}

/** Signals every process of a stopped tree; a process already gone is not an error. */
export class StoppedTree {
  #record: string | undefined;

  private constructor(
    readonly pids: readonly number[],
    record: string | undefined,
  ) {
    this.#record = record;
  }

  /** Holds `pids` (stopped), recorded under `id` in `recordDir` for a restart to `onRestart`. */
  static hold(recordDir: string, id: string, pids: readonly number[], onRestart: LeftStopped): StoppedTree {
    const record: TreeRecord = {
      onRestart,
      processes: pids.flatMap((pid) => {
        const startTicks = startTicksOf(pid);
        return startTicks === undefined ? [] : [{ pid, startTicks }];
      }),
    };
    const file = join(recordDir, `${onRestart}-${id}.json`);
    // The directory lives only while it holds records. Synchronous from here to the rename, as
    // forget is: no other migration's forget can remove it in between.
    mkdirSync(recordDir, { recursive: true, mode: 0o700 });
    // Written whole and renamed: a restart reads a record or none. Not flushed: a crash of the
    // machine takes the stopped tree with it.
    writeFileSync(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return new StoppedTree(pids, file);
  }

  /** Drops the record: past this the tree's fate is decided here, whatever happens to the gateway. */
  forget(): void {
    if (this.#record === undefined) return;
    try {
      unlinkSync(this.#record);
    } catch {
      // Gone already.
    }
    removeIfEmpty(dirname(this.#record));
    this.#record = undefined;
  }

  /** Lets the tree run again (SIGCONT), exactly as it was. */
  resume(): void {
    this.forget();
    signalAll(this.pids, "SIGCONT");
  }

  /** Kills the tree: it lives elsewhere now, or must never run (SIGKILL works on stopped tasks). */
  kill(): void {
    this.forget();
    signalAll(this.pids, "SIGKILL");
  }
}

/**
 * At start-up: does with each tree an earlier run left recorded what its record says (only to
 * processes that are still the ones recorded), and removes the records.
 */
export function settleLeftStopped(
  recordDir: string,
): { id: string; onRestart: LeftStopped; pids: number[] }[] {
  const settled: { id: string; onRestart: LeftStopped; pids: number[] }[] = [];
  let names: string[];
  try {
    names = readdirSync(recordDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return settled;
    throw err;
  }
  for (const name of names) {
    const file = join(recordDir, name);
    if (name.endsWith(".json")) {
      const record = readRecord(file);
      if (record) {
        const pids = record.processes.filter((p) => startTicksOf(p.pid) === p.startTicks).map((p) => p.pid);
        signalAll(pids, record.onRestart === "continue" ? "SIGCONT" : "SIGKILL");
        settled.push({
          id: name.slice(record.onRestart.length + 1, -".json".length),
          onRestart: record.onRestart,
          pids,
        });
      }
    }
    unlinkSync(file);
  }
  removeIfEmpty(recordDir);
  return settled;
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Another migration's record is in it, or it is gone already.
  }
}

function readRecord(file: string): TreeRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as TreeRecord;
    if (record.onRestart !== "continue" && record.onRestart !== "kill") return undefined;
    if (!Array.isArray(record.processes)) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}
