// The gateway side by side with CRIU's own Python client (pycriu) on the same CRIU binary, in one
// run, alternating call by call, medians compared. Also: the gateway's event-loop delay while 100
// calls run at once, and its RSS before, during and after a 1 GiB dump. `npm run bench`.
//
// The gateway runs as its own process (bin/criu-gateway.js serve, the compiled gateway), so its RSS
// is its own; bench/loopDelay.mjs is preloaded into it to measure the event loop. pycriu runs in
// bench/pycriu_driver.py, timing each request inside Python. Nothing here asserts a time: it prints.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, test } from "vitest";
import {
  CriuOptions,
  CriuServiceClient,
  type DumpRequest,
  Durability,
  type RestoreResponse,
} from "../gen/criu/gateway/v1/gateway.js";
import { packageRoot } from "../src/packageRoot.js";
import { call, criuBin } from "../test/support/gateway.js";
import { killAndWaitGone, waitFor } from "../test/support/workload.js";

const ROUNDS = {
  version: Number(process.env.BENCH_VERSION_ROUNDS ?? 30),
  smallDump: Number(process.env.BENCH_SMALL_DUMP_ROUNDS ?? 15),
  bigDump: Number(process.env.BENCH_BIG_DUMP_ROUNDS ?? 7),
  restore: Number(process.env.BENCH_RESTORE_ROUNDS ?? 8),
};
const MIB = 1024 * 1024;
/** Bursts of 100 concurrent calls per kind, for the event-loop delay. */
const BURSTS = 5;
/** Extra `serve` arguments, e.g. to compare settings: BENCH_SERVE_ARGS="--idle-worker-ms 60000". */
const SERVE_ARGS = (process.env.BENCH_SERVE_ARGS ?? "").split(" ").filter((a) => a !== "");

const bin = criuBin();
let dir: string;
let gateway: ChildProcess;
let client: CriuServiceClient;
let direct: PycriuDriver;
const lines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-bench-"));
  direct = startPycriu(join(dir, "pycriu"));
  const socket = join(dir, "gw.sock");
  gateway = spawn(
    process.execPath,
    [
      "--import",
      join(packageRoot, "bench", "loopDelay.mjs"),
      join(packageRoot, "bin", "criu-gateway.js"),
      "serve",
      "--listen",
      `unix:${socket}`,
      "--images-root",
      join(dir, "images"),
      "--criu",
      bin,
      "--log-level",
      "error",
      "--audit-log",
      join(dir, "audit.log"),
      // 100 concurrent FEATURE_CHECKs wait for a worker beyond the default queue (16 per worker).
      "--max-queued-operations",
      "128",
      ...SERVE_ARGS,
    ],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  client = new CriuServiceClient(`unix:${socket}`, credentials.createInsecure());
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await call((cb) => client.version({}, cb));
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});

afterAll(async () => {
  client?.close();
  direct?.close();
  if (gateway?.exitCode === null) {
    const exited = new Promise((resolve) => gateway.once("exit", resolve));
    gateway.kill("SIGTERM");
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(lines.join("\n"));
});

test("the gateway side by side with pycriu", { timeout: 30 * 60_000 }, async () => {
  lines.push(
    `machine: ${machine()}`,
    `load before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  lines.push("", "| request | gateway median | pycriu median | ratio | rounds |", "|---|---|---|---|---|");

  await compare("VERSION", ROUNDS.version, "pycriu", {
    gateway: () => timed(() => call((cb) => client.version({}, cb))),
    direct: () => direct.run({ op: "version" }),
  });

  const small = startSleeper();
  try {
    const pid = small.pid as number;
    await compare(
      "DUMP small, leave_running, FSYNC",
      ROUNDS.smallDump,
      "pycriu + fsync",
      dumps(pid, "fsync"),
    );
    await compare("DUMP small, leave_running, NONE", ROUNDS.smallDump, "pycriu", dumps(pid, "none"));
  } finally {
    small.kill("SIGKILL");
  }

  const big = await startMemoryHog(256);
  try {
    const pid = big.pid as number;
    await compare("DUMP 256 MiB, FSYNC", ROUNDS.bigDump, "pycriu + fsync", dumps(pid, "fsync"));
    await compare("DUMP 256 MiB, NONE", ROUNDS.bigDump, "pycriu", dumps(pid, "none"));
  } finally {
    big.kill("SIGKILL");
  }

  await compareRestores();
  await eventLoopUnderLoad();
  await rssDuringBigDump();
  lines.push(
    `load after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
});

/** Runs both sides `rounds` times, alternating which goes first, and records the medians. */
async function compare(
  name: string,
  rounds: number,
  directName: string,
  sides: { gateway: (i: number) => Promise<number>; direct: (i: number) => Promise<number> },
): Promise<void> {
  const g: number[] = [];
  const d: number[] = [];
  // One untimed round each: the first call of a kind pays for caches being filled.
  await sides.gateway(-1);
  await sides.direct(-1);
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      g.push(await sides.gateway(i));
      d.push(await sides.direct(i));
    } else {
      d.push(await sides.direct(i));
      g.push(await sides.gateway(i));
    }
  }
  const gm = median(g);
  const dm = median(d);
  lines.push(
    `| ${name} | ${gm.toFixed(1)} ms | ${dm.toFixed(1)} ms (${directName}) | ${(gm / dm).toFixed(2)} | ${rounds} |`,
  );
}

/**
 * A dump of `pid` (left running) through both, each into a fresh directory, removed untimed. With
 * "fsync" the gateway is asked for DURABILITY_FSYNC and pycriu's caller fsyncs every file and the
 * directory; with "none" neither flushes.
 */
function dumps(pid: number, durability: "fsync" | "none") {
  let n = 0;
  return {
    gateway: async () => {
      const id = `bench-${n++}`;
      // Writes of the previous round must not be flushed on this one's time.
      execFileSync("sync");
      const request: DumpRequest = {
        checkpointId: id,
        parentCheckpointId: "",
        options: CriuOptions.fromPartial({ pid, leaveRunning: true }),
        durability: durability === "fsync" ? Durability.DURABILITY_FSYNC : Durability.DURABILITY_NONE,
      };
      const ms = await timed(() => call((cb) => client.dump(request, cb)));
      await call((cb) => client.deleteCheckpoint({ checkpointId: id }, cb));
      return ms;
    },
    direct: async () => {
      const images = join(dir, `direct-${n++}`);
      mkdirSync(images, { mode: 0o700 });
      execFileSync("sync");
      const fsync = durability === "fsync";
      const ms = await direct.run({ op: "dump", pid, dir: images, leave_running: true, fsync });
      rmSync(images, { recursive: true, force: true });
      return ms;
    },
  };
}

/**
 * RESTORE of an idle process, once dumped by each side. The restored process is killed after each
 * round and its pid waited for (it is no child of ours), untimed.
 */
async function compareRestores(): Promise<void> {
  const a = startSleeper();
  const aGone = new Promise((resolve) => a.once("exit", resolve));
  const request: DumpRequest = {
    checkpointId: "bench-restore",
    parentCheckpointId: "",
    options: CriuOptions.fromPartial({ pid: a.pid }),
  };
  await call((cb) => client.dump(request, cb));
  await aGone;
  const b = startSleeper();
  const bGone = new Promise((resolve) => b.once("exit", resolve));
  const images = join(dir, "direct-restore");
  mkdirSync(images, { mode: 0o700 });
  await direct.run({ op: "dump", pid: b.pid as number, dir: images, leave_running: false });
  await bGone;
  await compare("RESTORE small idle process", ROUNDS.restore, "pycriu", {
    gateway: async () => {
      let pid = 0;
      const ms = await timed(async () => {
        const request = { checkpointId: "bench-restore", options: undefined };
        pid = (await call<RestoreResponse>((cb) => client.restore(request, cb))).pid;
      });
      await killAndWaitGone(pid);
      return ms;
    },
    direct: async () => {
      const answer = await direct.request({ op: "restore", dir: images });
      await killAndWaitGone(answer.pid as number);
      return answer.ms as number;
    },
  });
}

/**
 * The gateway's event-loop delay (p99 over each burst) while 100 calls run at once: VERSION, which
 * the gateway answers from what CRIU said before (no worker), and FEATURE_CHECK, which each go to
 * a CRIU worker (the gateway runs with a queue that admits them all); and, for scale, over a second
 * without calls, which on a busy machine is not zero either.
 */
async function eventLoopUnderLoad(): Promise<void> {
  await gatewayMessage("reset");
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idle = await gatewayMessage("report");
  lines.push("");
  const bursts: [string, () => Promise<unknown>][] = [
    ["VERSION", () => call((cb) => client.version({}, cb))],
    ["FEATURE_CHECK", () => call((cb) => client.featureCheck({}, cb))],
  ];
  for (const [name, once] of bursts) {
    const p99s: number[] = [];
    let max = 0;
    for (let round = 0; round < BURSTS; round++) {
      await gatewayMessage("reset");
      await Promise.all(Array.from({ length: 100 }, once));
      const report = await gatewayMessage("report");
      p99s.push(report.p99Ms as number);
      max = Math.max(max, report.maxMs as number);
    }
    lines.push(
      `event loop delay with 100 concurrent ${name} calls: p99 ${median(p99s).toFixed(2)} ms (median of ${BURSTS} bursts: ${p99s.map((p) => p.toFixed(2)).join(", ")}), max ${max.toFixed(2)} ms`,
    );
  }
  lines.push(`event loop delay without calls: p99 ${(idle.p99Ms as number).toFixed(2)} ms`);
}

/** The gateway's RSS before, at its peak during (VmHWM, reset first), and after a 1 GiB dump. */
async function rssDuringBigDump(): Promise<void> {
  const pid = gateway.pid as number;
  const hog = await startMemoryHog(1024);
  try {
    const before = statusKib(pid, "VmRSS");
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    let sampledPeak = before;
    const sampler = setInterval(() => {
      sampledPeak = Math.max(sampledPeak, statusKib(pid, "VmRSS"));
    }, 5);
    const request: DumpRequest = {
      checkpointId: "bench-rss",
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ pid: hog.pid, leaveRunning: true }),
      durability: Durability.DURABILITY_NONE,
    };
    const ms = await timed(() => call((cb) => client.dump(request, cb)));
    clearInterval(sampler);
    const peak = Math.max(sampledPeak, statusKib(pid, "VmHWM"));
    await call((cb) => client.deleteCheckpoint({ checkpointId: "bench-rss" }, cb));
    const after = statusKib(pid, "VmRSS");
    lines.push(
      `gateway RSS around a 1 GiB dump (${ms.toFixed(0)} ms): before ${mib(before)}, peak ${mib(peak)}, after ${mib(after)}; growth ${mib(peak - before)}`,
    );
  } finally {
    hog.kill("SIGKILL");
  }
}

interface PycriuDriver {
  request(command: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The time the request took inside Python, ms. */
  run(command: Record<string, unknown>): Promise<number>;
  close(): void;
}

/** pycriu from the CRIU source tree, with rpc_pb2 generated from its images/rpc.proto by protoc. */
function startPycriu(packageDir: string): PycriuDriver {
  const source = join(packageRoot, ".criu", "source");
  mkdirSync(join(packageDir, "pycriu"), { recursive: true });
  writeFileSync(join(packageDir, "pycriu", "__init__.py"), "");
  symlinkSync(join(source, "lib", "pycriu", "criu.py"), join(packageDir, "pycriu", "criu.py"));
  execFileSync("protoc", [
    `-I=${join(source, "images")}`,
    `--python_out=${join(packageDir, "pycriu")}`,
    join(source, "images", "rpc.proto"),
  ]);
  const child = spawn("/usr/bin/python3", [join(packageRoot, "bench", "pycriu_driver.py"), packageDir, bin], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const answers = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: string) => void)[] = [];
  answers.on("line", (line) => waiting.shift()?.(line));
  const request = async (command: Record<string, unknown>) => {
    const line = new Promise<string>((resolve) => waiting.push(resolve));
    child.stdin?.write(`${JSON.stringify(command)}\n`);
    const answer = JSON.parse(await line) as Record<string, unknown>;
    if (answer.error) throw new Error(`pycriu: ${answer.error}`);
    return answer;
  };
  return {
    request,
    run: async (command) => (await request(command)).ms as number,
    close: () => child.stdin?.end(),
  };
}

function gatewayMessage(message: "reset" | "report"): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    gateway.once("message", (answer) => resolve(answer as Record<string, unknown>));
    gateway.send(message);
  });
}

/** An idle process in its own session: what CRIU dumps without options. */
function startSleeper(): ChildProcess {
  return spawn("sleep", ["1000000"], { stdio: "ignore", detached: true });
}

/** A process holding `sizeMib` MiB of written (non-zero) anonymous memory, then idle. */
async function startMemoryHog(sizeMib: number): Promise<ChildProcess> {
  const program = `import time\nb = bytearray(b"\\x5a") * (${sizeMib} << 20)\nwhile True: time.sleep(3600)`;
  const child = spawn("/usr/bin/python3", ["-c", program], { stdio: "ignore", detached: true });
  const pid = child.pid as number;
  await waitFor(() => statusKib(pid, "VmRSS") > sizeMib * 1024, `a ${sizeMib} MiB process`, 60_000);
  return child;
}

function statusKib(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0);
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

function machine(): string {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  const cores = readFileSync("/proc/cpuinfo", "utf8").match(/^processor\s*:/gm)?.length ?? 0;
  const memGib = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / MIB;
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const criu = execFileSync(bin, ["--version"], { encoding: "utf8" }).split("\n")[0];
  return `${cores} × ${cpu}, ${memGib.toFixed(0)} GiB, kernel ${kernel}, ${criu}, Node ${process.version}`;
}
