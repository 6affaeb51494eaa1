// Workloads and calls for migration tests: a counter started inside a host's namespaces, and
// Migrate's stream collected.

import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { expect } from "vitest";
import type {
  CriuServiceClient,
  MigrateRequest,
  MigrateResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { Host } from "./twoHosts.js";
import { waitFor } from "./workload.js";

// Leads its own session (as a dump without shell_job needs), records its pid as its namespace
// sees it, then counts into a file through one descriptor, as test/support/workload.ts's counter.
const COUNTER = `
import os, sys, time
os.setsid()
path, pidfile, n = sys.argv[1], sys.argv[-1], 0
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
with open(pidfile + ".tmp", "w") as f: f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
while True:
    os.pwrite(fd, str(n).ljust(20).encode(), 0)
    n += 1
    time.sleep(0.01)
`;

/** Pids of a host's namespace start here for workloads, above the gateway's own threads. */
export const WORKLOAD_PID_BASE = 20_000;

export interface HostCounter {
  /** Its pid inside the host's namespace: what Migrate takes. */
  nsPid: number;
  /** Its pid in the test's namespace. */
  pid: number;
  file: string;
  launcher: ChildProcess;
  read(): number;
  /** The process state letter of the test's view of `pid` (R, S, T, ...), or "gone". */
  state(): string;
}

/** Starts the counter in `host`, with a pid above WORKLOAD_PID_BASE that the other host has free. */
export async function startHostCounter(host: Host, name: string): Promise<HostCounter> {
  const file = join(host.dir, `${name}.txt`);
  const started = await startHostPython(host, name, COUNTER, [file]);
  await waitFor(
    () => existsSync(file) && Number(readFileSync(file, "utf8")) >= 3,
    `counter ${name} to count`,
  );
  return { ...started, file, read: () => Number(readFileSync(file, "utf8")) };
}

/**
 * Runs a Python program in `host` with its pid file as argv[1] after `args`' last: the program
 * writes its pid there (atomically) once it is ready. Its pid is WORKLOAD_PID_BASE or above.
 */
export async function startHostPython(
  host: Host,
  name: string,
  program: string,
  args: readonly string[],
): Promise<Omit<HostCounter, "file" | "read">> {
  const pidfile = join(host.dir, `${name}.pid`);
  // The bash reaps the program when it dies; the pid base leaves the low pids to each host's
  // gateway. Its stdio is opened inside the namespace: CRIU looks files up in its own mounts.
  const launcher = host.spawn(
    "bash",
    "-c",
    `echo ${WORKLOAD_PID_BASE} > /proc/sys/kernel/ns_last_pid && /usr/bin/python3 -c "$@" </dev/null >/dev/null 2>&1 & wait`,
    "launch",
    program,
    ...args,
    pidfile,
  );
  await waitFor(() => existsSync(pidfile), `${name} to start`, 60_000);
  const nsPid = Number(readFileSync(pidfile, "utf8"));
  const pid = host.hostPidOf(nsPid);
  if (pid === undefined) throw new Error(`${name}: no process is pid ${nsPid} in host ${host.name}`);
  return { nsPid, pid, launcher, state: () => procState(pid) };
}

export function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] ?? "gone";
  } catch {
    return "gone";
  }
}

export interface MigrateOutcome {
  events: MigrateResponse[];
  error: ServiceError | undefined;
}

/** Runs Migrate to its end, keeping every message and the final status; `onEvent` sees each as it comes. */
export function migrate(
  client: CriuServiceClient,
  request: Partial<MigrateRequest>,
  onEvent?: (event: MigrateResponse) => void,
): Promise<MigrateOutcome> {
  return new Promise((resolve) => {
    const events: MigrateResponse[] = [];
    const call = client.migrate({
      pid: 0,
      target: "",
      mode: 0,
      dumpOptions: undefined,
      restoreOptions: undefined,
      checkpointId: "",
      ...request,
    });
    call.on("data", (m: MigrateResponse) => {
      events.push(m);
      onEvent?.(m);
    });
    call.on("error", (error: ServiceError) => resolve({ events, error }));
    call.on("end", () => resolve({ events, error: undefined }));
  });
}

/** The names of the events, in order ("frozen", "imagesSent", ...). */
export function eventNames(events: readonly MigrateResponse[]): string[] {
  return events.map((e) => Object.keys(e).find((k) => e[k as keyof MigrateResponse] !== undefined) ?? "?");
}

/** Waits until the counter has counted `more` beyond what it has now: it runs. */
export async function expectCounting(read: () => number, what: string, more = 5): Promise<void> {
  const from = read();
  await waitFor(() => read() >= from + more, what);
}

/**
 * redis-server in `host`, leading its own session, with a pid above WORKLOAD_PID_BASE. Not in
 * protected mode, so the other host answers over the veth pair (which nothing outside reaches).
 */
export async function startHostRedis(host: Host, port: number): Promise<{ nsPid: number; pid: number }> {
  const pidfile = join(host.dir, `redis-${port}.pid`);
  host.spawn(
    "bash",
    "-c",
    `echo ${WORKLOAD_PID_BASE + 500} > /proc/sys/kernel/ns_last_pid && setsid /usr/bin/redis-server --port "$0" --save "" --appendonly no --protected-mode no --pidfile "$1" </dev/null >/dev/null 2>&1 & wait`,
    String(port),
    pidfile,
  );
  await waitFor(
    async () => (await host.exec("redis-cli", "-p", String(port), "ping")).stdout.trim() === "PONG",
    "redis to answer",
  );
  const nsPid = Number(readFileSync(pidfile, "utf8"));
  const pid = host.hostPidOf(nsPid);
  if (pid === undefined) throw new Error(`redis: no process is pid ${nsPid} in host ${host.name}`);
  return { nsPid, pid };
}

// Fills `pages` pages with their own numbers (at the start and the end of each page), then
// counts: "<count> <full sweeps> <bad pages>". It checks its pages, 8192 at each step, for its
// first sweep and whenever "<file>.check" exists: a page that moved wrongly, or not at all, shows
// as bad. Between checks it touches one page only, as a mostly idle server would.
const MEMORY_COUNTER = `
import os, sys, time
os.setsid()
path, pages, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[-1]
mem = bytearray(pages * 4096)
def tag(i): return i.to_bytes(8, "little"), (i ^ 0x5A5A5A5A).to_bytes(8, "little")
for i in range(pages):
    head, tail = tag(i)
    mem[i * 4096:i * 4096 + 8] = head
    mem[i * 4096 + 4088:i * 4096 + 4096] = tail
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
with open(pidfile + ".tmp", "w") as f: f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
n = sweeps = bad = page = 0
while True:
    if sweeps == 0 or os.path.exists(path + ".check"):
        for _ in range(8192):
            head, tail = tag(page)
            if mem[page * 4096:page * 4096 + 8] != head or mem[page * 4096 + 4088:page * 4096 + 4096] != tail:
                bad += 1
            page += 1
            if page == pages:
                page = 0
                sweeps += 1
    os.pwrite(fd, ("%d %d %d" % (n, sweeps, bad)).ljust(40).encode(), 0)
    n += 1
    time.sleep(0.005)
`;

export interface MemoryCounter extends Omit<HostCounter, "read"> {
  read(): { count: number; sweeps: number; bad: number };
}

/** A process of `mib` MiB of numbered pages in `host`, counting and checking them all the time. */
export async function startHostMemoryCounter(host: Host, name: string, mib: number): Promise<MemoryCounter> {
  const file = join(host.dir, `${name}.txt`);
  const started = await startHostPython(host, name, MEMORY_COUNTER, [file, String(mib * 256)]);
  const read = () => {
    const [count = 0, sweeps = 0, bad = 0] = readFileSync(file, "utf8").trim().split(/\s+/).map(Number);
    return { count, sweeps, bad };
  };
  await waitFor(() => existsSync(file) && read().sweeps >= 1, `${name} to check its memory once`, 120_000);
  return { ...started, file, read };
}

/** Has the memory counter check all of its memory `sweeps` more times, and finds no bad page. */
export async function expectMemoryIntact(counter: MemoryCounter, what: string, sweeps = 1): Promise<void> {
  const from = counter.read().sweeps;
  writeFileSync(`${counter.file}.check`, "");
  await waitFor(() => counter.read().sweeps >= from + sweeps, what, 120_000);
  rmSync(`${counter.file}.check`);
  expect(counter.read().bad).toBe(0);
}

/** The checkpoints `host`'s gateway lists. */
export function checkpointsOf(host: Host): Promise<unknown[]> {
  return new Promise((resolve, reject) =>
    host.client.listCheckpoints({}, (err, res) => (err ? reject(err) : resolve(res?.checkpoints ?? []))),
  );
}

/** Takes checkpoint id `id` on `host` (a cpuinfo checkpoint), so that a migration under it is refused. */
export function takeCheckpointId(host: Host, id: string): Promise<void> {
  return new Promise((resolve, reject) =>
    host.client.cpuinfoDump({ checkpointId: id, options: undefined }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

export function deleteCheckpoint(host: Host, id: string): Promise<void> {
  return new Promise((resolve, reject) =>
    host.client.deleteCheckpoint({ checkpointId: id }, (err) => (err ? reject(err) : resolve())),
  );
}
