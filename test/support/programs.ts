// Real programs nobody here wrote (python's http.server, redis, nginx, node, sqlite), run as
// workloads to checkpoint through the gateway, and the ways a test asks them for their state.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import type { GatewayConfig } from "../../src/config.js";
import { dumpWith, restoreWith, startTestGateway, type TestGateway } from "./gateway.js";

export { freePort } from "./freePort.js";

import { expectNothingLeft } from "./processes.js";
import { waitFor } from "./workload.js";

/** The path of a program a test needs; a missing one fails the test with what to install. */
export function requireProgram(path: string, debianPackage: string): string {
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: install Debian's ${debianPackage} (\`npm test\` does, through scripts/bootstrap.sh --test)`,
    );
  }
  return path;
}

export const PYTHON = "/usr/bin/python3";

// The workload's parent: a child subreaper, so the orphans of a killed tree (nginx's workers) are
// reaped at once rather than by a slow pid 1, and it exits only when the whole tree has. The
// workload calls setsid() itself ("own": it leads its own session, as a dump without shell_job
// needs), or the reaper does ("outside": the session leader is outside the dumped tree). Its stdio
// is /dev/null and a log file, nothing that leads outside the tree.
const REAPER = `
import ctypes, os, sys
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
session, log = sys.argv[1], os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
if session == "outside":
    os.setsid()
pid = os.fork()
if pid == 0:
    if session == "own":
        os.setsid()
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.execv(sys.argv[3], sys.argv[3:])
os.write(1, b"%d\\n" % pid)
os.close(1)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
`;

export interface Workload {
  name: string;
  /** The root of the tree to dump: the program itself, leading its own session. */
  pid: number;
  /** Its stdout and stderr. */
  log: string;
  /** Resolves when every process of the tree has exited and been reaped. */
  gone: Promise<void>;
  /** Kills the whole tree and resolves when it is gone. */
  stop(): Promise<void>;
}

/** The processes below `pid` (children, grandchildren...), from /proc. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim();
      } catch {
        continue;
      }
      for (const c of children.split(" ").filter(Boolean).map(Number)) {
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}

/** The name the kernel shows for a process (its comm). */
export function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
}

/** Kills a tree (its root's process group and every descendant) and waits until all are gone. */
export async function killTree(pid: number): Promise<void> {
  const pids = [pid, ...descendants(pid)];
  for (const target of [-pid, ...pids]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // already gone, or not a group leader
    }
  }
  await waitFor(() => pids.every((p) => !existsSync(`/proc/${p}`)), `the tree of pid ${pid} to be gone`);
}

function startUnder(reaper: ChildProcess, name: string, log: string): Promise<Workload> {
  const exited = new Promise<void>((resolve) => reaper.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let out = "";
    reaper.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    reaper.stdout?.once("end", () => {
      const pid = Number(out.trim());
      if (!Number.isInteger(pid) || pid <= 0) {
        reject(new Error(`cannot start the ${name} workload`));
        return;
      }
      const stop = async () => {
        await killTree(pid);
        await exited;
      };
      resolve({ name, pid, log, gone: exited, stop });
    });
  });
}

/** The workloads a test started and the trees it restored; `stopAll` ends every one of them. */
export class Workloads {
  readonly #started: Workload[] = [];
  readonly #restored: number[] = [];

  /**
   * Starts `argv` (argv[0] an absolute path) under a reaper: in a session of its own, or with
   * `session: "outside"` in the reaper's.
   */
  async start(
    dir: string,
    name: string,
    argv: string[],
    options: { session?: "own" | "outside" } = {},
  ): Promise<Workload> {
    const log = join(dir, `${name}.log`);
    const reaper = spawn(PYTHON, ["-c", REAPER, options.session ?? "own", log, ...argv], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: dir },
      cwd: dir,
    });
    const workload = await startUnder(reaper, name, log);
    this.#started.push(workload);
    return workload;
  }

  /** A restored tree (not our child), to kill with the test. */
  restored(pid: number): number {
    this.#restored.push(pid);
    return pid;
  }

  /** Kills what a test restored, then what it started; each wait is bounded. */
  async stopAll(): Promise<void> {
    for (const pid of this.#restored.splice(0)) await killTree(pid);
    for (const w of this.#started.splice(0)) await w.stop();
  }
}

export interface WorkloadSuite {
  /** The test file's gateway (from its beforeAll on). */
  readonly gw: TestGateway;
  readonly workloads: Workloads;
}

/**
 * One gateway for a test file, and the workloads of each test ended after it, with the check that
 * the gateway has nothing left. `waitForWorkers`: for Session calls, whose worker may still be
 * reaped when the stream has ended.
 */
export function workloadSuite(
  options: { config?: Partial<GatewayConfig>; waitForWorkers?: boolean } = {},
): WorkloadSuite {
  let gateway: TestGateway | undefined;
  const workloads = new Workloads();
  beforeAll(async () => {
    gateway = await startTestGateway(options.config ?? {});
  });
  afterAll(async () => {
    await gateway?.close();
  });
  afterEach(async () => {
    await workloads.stopAll();
    if (gateway) await expectNothingLeft(gateway, { waitForWorkers: options.waitForWorkers ?? false });
  });
  return {
    get gw(): TestGateway {
      if (!gateway) throw new Error("the gateway starts in beforeAll");
      return gateway;
    },
    workloads,
  };
}

/** Whether a TCP connection to 127.0.0.1:port is accepted (then closed at once). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** GET http://127.0.0.1:port/path on a fresh connection: its status and body. */
export function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.once("error", reject);
    });
    req.once("timeout", () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)));
    req.once("error", reject);
    req.end();
  });
}

/** Runs a program to its end: its stdout; a failure (exit status, signal) rejects with its stderr. */
export function runProgram(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.once("error", reject);
    child.once("close", (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`${file} failed (${code ?? signal}): ${err.trim()}`)),
    );
    // A program that exits without reading all its input fails on its own exit status, not on EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
  });
}

/** How a dump ends the original: CRIU kills it, or it runs on (leave_running) until the test ends it. */
export type Ending = "killed" | "leave_running";
export const ENDINGS: Ending[] = ["killed", "leave_running"];

export interface Cycle {
  /** The checkpoint's id. */
  id: string;
  /** The restored tree's root. */
  pid: number;
}

/**
 * Dumps a workload through the gateway and restores it. With leave_running, `whileRunning` asks
 * the original for its state after the dump; the original is then killed and gone before the
 * restore, which would otherwise collide with it on its pid and its port.
 */
export async function dumpAndRestore(
  gw: TestGateway,
  workloads: Workloads,
  w: Workload,
  ending: Ending,
  options: {
    dump?: Partial<CriuOptions>;
    restore?: Partial<CriuOptions>;
    whileRunning?: () => Promise<void>;
    /** Runs once the original is gone, before the restore. */
    beforeRestore?: () => Promise<void>;
  } = {},
): Promise<Cycle> {
  const id = `${w.name}-${ending}`;
  await dumpWith(gw.client, id, { pid: w.pid, leaveRunning: ending === "leave_running", ...options.dump });
  if (ending === "leave_running") {
    await options.whileRunning?.();
    await w.stop();
  } else {
    await w.gone;
  }
  await options.beforeRestore?.();
  const restored = await restoreWith(gw.client, id, options.restore ?? {});
  return { id, pid: workloads.restored(restored.pid) };
}
