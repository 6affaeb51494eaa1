// Trees that talk among themselves (a pipeline, threads, a unix socket pair) and a process holding
// SQLite's file locks, checkpointed through the gateway (killed, and with leave_running),
// restored, and asked for their state: each writes what it has seen into a fixed-width status file.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { errorDetailOf } from "../../../src/grpc/errorStatus.js";
import { dumpWith, failure, restoreWith } from "../../support/gateway.js";
import {
  commOf,
  descendants,
  dumpAndRestore,
  ENDINGS,
  killTree,
  PYTHON,
  requireProgram,
  runProgram,
  workloadSuite,
} from "../../support/programs.js";
import { isAlive, waitFor } from "../../support/workload.js";

// Every program writes its status in place, fixed-width, through one descriptor opened before it
// starts: the file's size never changes, which CRIU checks on restore.
const STATUS_FILE = `
import os, sys
status = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
def report(text, slot=0, width=40):
    os.pwrite(status, text.ljust(width - 1).encode() + b"\\n", slot * width)
`;

// The consumer end of \`seq | python3\`: the last number read, and how many numbers were missing
// or repeated (a pipe's buffered data lost or replayed by a restore would show as a gap).
const CONSUMER = `${STATUS_FILE}
import time
last, gaps = 0, 0
report("0 0")
for line in sys.stdin:
    n = int(line)
    gaps += n != last + 1
    last = n
    report(f"{last} {gaps}")
    time.sleep(0.002)
`;

// Four threads, each counting in a slot of its own.
const THREADS = `${STATUS_FILE}
import threading, time
for slot in range(4):
    report("0", slot)
def count(slot):
    n = 0
    while True:
        n += 1
        report(str(n), slot)
        time.sleep(0.01)
for slot in range(4):
    threading.Thread(target=count, args=(slot,), daemon=True).start()
threading.Event().wait()
`;

// A parent and its child joined by a unix socket pair: the parent sends n, the child answers n+1.
const SOCKET_PAIR = `${STATUS_FILE}
import socket, time
parent, child = socket.socketpair()
report("0 ok")
if os.fork() == 0:
    parent.close()
    while True:
        child.send(str(int(child.recv(64)) + 1).encode())
child.close()
n = 0
while True:
    parent.send(str(n).encode())
    answer = int(parent.recv(64))
    ok = "ok" if answer == n + 1 else "wrong"
    n = answer
    report(f"{n} {ok}")
    time.sleep(0.01)
`;

// Inserts rows 1, 2, 3... one transaction each, reporting the last one committed. In exclusive
// locking mode SQLite holds its POSIX locks on the database from the first write on: at any dump.
const SQLITE_WRITER = `${STATUS_FILE}
import sqlite3
report("0")
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, v TEXT)")
n = 0
while True:
    n += 1
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (?, ?)", (n, "row %d" % n))
    db.execute("COMMIT")
    report(str(n))
`;

const suite = workloadSuite();
const { workloads } = suite;

/** A status file's slots, each split into its words. */
function readStatus(file: string): string[][] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.trim().split(" "));
}

/** The first number of a status file's first slot. */
function firstNumber(file: string): number {
  return Number(readStatus(file)[0]?.[0]);
}

async function python(name: string, program: string, ...args: string[]) {
  const file = join(suite.gw.dir, `${name}.status`);
  const w = await workloads.start(suite.gw.dir, name, [PYTHON, "-c", program, file, ...args]);
  return { w, file };
}

describe.each(ENDINGS)("process trees that talk among themselves, dumped and %s", (ending) => {
  it("sh -c 'seq | python3': the pipeline reads on without a gap", async () => {
    const name = `pipeline-${ending}`;
    const file = join(suite.gw.dir, `${name}.status`);
    const w = await workloads.start(suite.gw.dir, name, [
      "/bin/sh",
      "-c",
      'seq 1 999999999 | "$0" -c "$1" "$2"',
      PYTHON,
      CONSUMER,
      file,
    ]);
    await waitFor(() => firstNumber(file) > 10, "the pipeline to flow");
    const tree = descendants(w.pid).sort();
    expect(tree.map(commOf).sort()).toEqual(["python3", "seq"]);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending);
    const atRestore = firstNumber(file);
    expect(restored.pid).toBe(w.pid);
    expect(descendants(restored.pid).sort()).toEqual(tree);
    await waitFor(() => firstNumber(file) > atRestore + 20, "the restored pipeline to flow");
    expect(readStatus(file)[0]?.[1]).toBe("0");
  });

  it("a threaded process comes back with the same threads, each counting on", async () => {
    const { w, file } = await python(`threads-${ending}`, THREADS);
    await waitFor(() => {
      const slots = readStatus(file);
      return slots.length === 4 && slots.every((slot) => Number(slot[0]) > 3);
    }, "every thread to count");
    const before = threadsOf(w.pid);
    expect(before).toHaveLength(5);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending);
    const atRestore = readStatus(file).map((slot) => Number(slot[0]));
    expect(threadsOf(restored.pid)).toEqual(before);
    await waitFor(
      () => readStatus(file).every((slot, i) => Number(slot[0]) > (atRestore[i] ?? 0) + 3),
      "every restored thread to count on",
    );
  });

  it("a unix socket pair between a parent and its child still carries their exchange", async () => {
    const { w, file } = await python(`socketpair-${ending}`, SOCKET_PAIR);
    await waitFor(() => firstNumber(file) > 5, "the exchange to start");
    const child = descendants(w.pid);
    expect(child).toHaveLength(1);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending);
    const atRestore = firstNumber(file);
    expect(descendants(restored.pid)).toEqual(child);
    await waitFor(() => firstNumber(file) > atRestore + 5, "the restored pair to exchange on");
    expect(readStatus(file)[0]?.[1]).toBe("ok");
  });
});

/** A process's thread ids, sorted. */
function threadsOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .sort((a, b) => a - b);
}

describe("file_locks on an SQLite database being written", () => {
  const sqlite3 = () => requireProgram("/usr/bin/sqlite3", "sqlite3");

  async function writer(name: string) {
    const db = join(suite.gw.dir, `${name}.db`);
    const { w, file } = await python(name, SQLITE_WRITER, db);
    await waitFor(() => firstNumber(file) > 50, "the writer to commit rows");
    return { w, file, db };
  }

  /** What sqlite3 says of the database: its row count and highest row, or its error. */
  function query(db: string): Promise<string> {
    return runProgram(sqlite3(), [
      db,
      "SELECT count(*) || ' ' || max(n) FROM t; PRAGMA integrity_check;",
    ]).catch((err: Error) => err.message);
  }

  it("needs file_locks: without it CRIU refuses the dump and the writer writes on", async () => {
    const { w, file } = await writer("sqlite-refused");
    const err = await failure(dumpWith(suite.gw.client, "sqlite-refused", { pid: w.pid }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toContain("Some file locks are hold by dumping tasks!");
    const now = firstNumber(file);
    await waitFor(() => firstNumber(file) > now + 10, "the writer to write on");
    expect(isAlive(w.pid)).toBe(true);
  });

  it("killed at the dump, restored with its lock: it writes on and the database holds every row", async () => {
    const { w, file, db } = await writer("sqlite-killed");
    const restored = await dumpAndRestore(suite.gw, workloads, w, "killed", {
      dump: { fileLocks: true },
      restore: { fileLocks: true },
    });
    const atRestore = firstNumber(file);
    await waitFor(() => firstNumber(file) > atRestore + 50, "the restored writer to commit rows");
    // The restored process holds SQLite's exclusive lock: nobody else may read.
    expect(await query(db)).toMatch(/database is locked/);
    await killTree(restored.pid);
    const last = firstNumber(file);
    const [counts, integrity] = (await query(db)).trim().split("\n");
    const [count, max] = (counts ?? "").split(" ").map(Number);
    // Every row from 1 to the last committed one, none lost or doubled across the restore.
    expect(count).toBe(max);
    expect(count).toBeGreaterThanOrEqual(last);
    expect(integrity).toBe("ok");
  });

  it("left running, it writes on after the dump, so CRIU refuses the restore: the database changed size", async () => {
    const { w, file, db } = await writer("sqlite-left");
    await dumpWith(suite.gw.client, "sqlite-left", { pid: w.pid, fileLocks: true, leaveRunning: true });
    // The file only grows: once it is larger than just after the dump, it is larger than the
    // checkpoint recorded.
    const afterDump = statSync(db).size;
    await waitFor(() => statSync(db).size > afterDump, "the original to write on into new pages");
    expect(firstNumber(file)).toBeGreaterThan(0);
    await w.stop();
    const err = await failure(restoreWith(suite.gw.client, "sqlite-left", { fileLocks: true }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toContain(`File ${db.slice(1)} has bad size`);
    // CRIU killed what it had begun to restore; wait until pid 1 has reaped it.
    await waitFor(() => !existsSync(`/proc/${w.pid}`), "the half-restored writer to be gone");
  });
});
