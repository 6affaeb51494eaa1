// A tree a migration holds stopped, and what a restart does with one a crashed gateway left: real
// processes, stopped and signalled.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoppedTree, settleLeftStopped } from "../../src/domain/migration/stoppedTree.js";
import { procState } from "../support/migration.js";
import { waitFor } from "../support/workload.js";

let dir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-stopped-"));
});

afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A sleeping child of this test, stopped as a migration's dump leaves its tree. */
async function stoppedSleeper(): Promise<{ pid: number; exited: Promise<unknown> }> {
  const child = spawn("sleep", ["3600"], { stdio: "ignore" });
  children.push(child);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const pid = child.pid ?? 0;
  process.kill(pid, "SIGSTOP");
  await waitFor(() => procState(pid) === "T", "the sleeper to stop");
  return { pid, exited };
}

/** Where the tests' records go, as a store's stoppedTreesDir: a directory that may not exist. */
const records = () => join(dir, "records");

function recordsMade(): string {
  mkdirSync(records(), { recursive: true });
  return records();
}

describe("StoppedTree", () => {
  it("records a held tree until its fate is decided here", async () => {
    const { pid } = await stoppedSleeper();
    const tree = StoppedTree.hold(records(), "m1", [pid], "continue");
    expect(readdirSync(records())).toEqual(["continue-m1.json"]);
    tree.resume();
    expect(existsSync(records())).toBe(false);
    await waitFor(() => procState(pid) === "S", "the sleeper to run again");
  });

  it("keeps no directory when no tree is held, and leaves a restart nothing to do", () => {
    expect(settleLeftStopped(join(dir, "records"))).toEqual([]);
  });

  it("forgets the record before the switch, so that a restart leaves the tree alone", async () => {
    const { pid } = await stoppedSleeper();
    const tree = StoppedTree.hold(records(), "m2", [pid], "continue");
    tree.forget();
    expect(settleLeftStopped(records())).toEqual([]);
    expect(procState(pid)).toBe("T");
  });
});

describe("settleLeftStopped (a restart after a crash)", () => {
  it("continues a source's copy and kills a target's, then removes the records", async () => {
    const source = await stoppedSleeper();
    const target = await stoppedSleeper();
    StoppedTree.hold(records(), "m3", [source.pid], "continue");
    StoppedTree.hold(records(), "m3", [target.pid], "kill");
    const settled = settleLeftStopped(records());
    expect(settled).toEqual(
      expect.arrayContaining([
        { id: "m3", onRestart: "continue", pids: [source.pid] },
        { id: "m3", onRestart: "kill", pids: [target.pid] },
      ]),
    );
    await waitFor(() => procState(source.pid) === "S", "the source's copy to run again");
    await target.exited;
    expect(existsSync(records())).toBe(false);
  });

  it("leaves a process that only has a recorded pid (started at another time) alone", async () => {
    const { pid } = await stoppedSleeper();
    const record = { onRestart: "kill", processes: [{ pid, startTicks: 1 }] };
    writeFileSync(join(recordsMade(), "kill-m4.json"), JSON.stringify(record));
    expect(settleLeftStopped(records())).toEqual([{ id: "m4", onRestart: "kill", pids: [] }]);
    expect(procState(pid)).toBe("T");
    expect(existsSync(records())).toBe(false);
  });

  it("removes a record it cannot read without signalling anything", async () => {
    writeFileSync(join(recordsMade(), "continue-m5.json"), "{not json");
    writeFileSync(join(recordsMade(), "continue-m6.json.tmp"), "half written");
    expect(settleLeftStopped(records())).toEqual([]);
    expect(existsSync(records())).toBe(false);
  });
});
