// How long a 1 GiB process is frozen when it moves between two hosts (two namespaces made here,
// test/support/twoHosts.ts): through the gateways (Migrate), and with CRIU's own command line on
// the same machine, stop-and-copy and post-copy (dump --lazy-pages, restore --lazy-pages with a
// `criu lazy-pages` daemon). Prints one table at the end. Run with `npm run bench`.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { MigrationMode } from "../gen/criu/gateway/v1/gateway.js";
import { criuBin } from "../test/support/gateway.js";
import { migrate, startHostPython } from "../test/support/migration.js";
import { type Host, startTwoHosts, type TwoHosts } from "../test/support/twoHosts.js";
import { waitFor } from "../test/support/workload.js";

const GIB = 1 << 30;
// 1 GiB of pages that are all present and none of them zero, then idle.
const HOLDER = `
import os, sys, time
os.setsid()
block = os.urandom(1 << 20)
data = bytearray(block) * ${GIB >> 20}
with open(sys.argv[-1] + ".tmp", "w") as f: f.write(str(os.getpid()))
os.rename(sys.argv[-1] + ".tmp", sys.argv[-1])
while True:
    time.sleep(0.05)
`;
const PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size";
const criu = criuBin();
const rows: { how: string; frozenMs: number; allMovedMs?: number; note?: string }[] = [];
let hosts: TwoHosts;
let pipeMaxBefore = "";
let serial = 0;

beforeAll(async () => {
  pipeMaxBefore = readFileSync(PIPE_MAX_SIZE, "utf8");
  // CRIU's page server grows its pipes past the default 1 MiB and lacks CAP_SYS_RESOURCE here.
  writeFileSync(PIPE_MAX_SIZE, "4194304");
  hosts = await startTwoHosts();
}, 120_000);

afterAll(async () => {
  await hosts?.close();
  if (pipeMaxBefore) writeFileSync(PIPE_MAX_SIZE, pipeMaxBefore);
  const table = rows.map((r) => ({
    how: r.how,
    "frozen ms": r.frozenMs.toFixed(0),
    "all memory moved ms": r.allMovedMs?.toFixed(0) ?? "",
    note: r.note ?? "",
  }));
  console.log("\nFrozen time of a 1 GiB process moving between two hosts (namespaces) on this machine");
  console.table(table);
});

async function holder(host: Host) {
  return startHostPython(host, `holder-${serial++}`, HOLDER, []);
}

async function must(host: Host, ...argv: string[]): Promise<void> {
  const done = await host.exec(...argv);
  if (done.code !== 0) throw new Error(`${argv.join(" ")} in ${host.name}: ${done.stderr}`);
}

/** A CRIU command in `host` that says it is ready by writing to its --status-fd 3. */
function spawnWithStatus(
  host: Host,
  argv: string[],
): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null> } {
  const child = spawn("nsenter", ["-t", String(host.initPid), "--pid", "--net", "--mount", "--", ...argv], {
    stdio: ["ignore", "ignore", "ignore", "pipe"],
  });
  const ready = new Promise<void>((resolve) => child.stdio[3]?.once("data", () => resolve()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, ready, exited };
}

const ms = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;
const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

describe("moving a 1 GiB process between two hosts", () => {
  bench(
    "gateways: Migrate STOP_AND_COPY",
    async () => {
      const p = await holder(hosts.a);
      const outcome = await migrate(hosts.a.client, {
        pid: p.nsPid,
        target: hosts.b.address,
        mode: MigrationMode.MIGRATION_MODE_STOP_AND_COPY,
      });
      if (outcome.error) throw new Error(outcome.error.details);
      const stats = outcome.events.at(-1)?.done?.statistics;
      const part = (us: number | undefined) => ((us ?? 0) / 1000).toFixed(0);
      rows.push({
        how: "gateways, stop-and-copy",
        frozenMs: (stats?.frozenTimeUs ?? 0) / 1000,
        note: `dump ${part(stats?.dumpTimeUs)} ms, images ${part(stats?.transferTimeUs)} ms, restore ${part(stats?.restoreTimeUs)} ms`,
      });
      process.kill(hosts.b.hostPidOf(p.nsPid) ?? 0, "SIGKILL");
    },
    once,
  );

  bench(
    "gateways: Migrate POST_COPY",
    async () => {
      const p = await holder(hosts.a);
      const outcome = await migrate(hosts.a.client, {
        pid: p.nsPid,
        target: hosts.b.address,
        mode: MigrationMode.MIGRATION_MODE_POST_COPY,
      });
      const stats = outcome.events.at(-1)?.done?.statistics;
      rows.push({
        how: "gateways, post-copy",
        frozenMs: (stats?.frozenTimeUs ?? Number.NaN) / 1000,
        allMovedMs: (stats?.totalTimeUs ?? Number.NaN) / 1000,
        note: outcome.error
          ? `not measured: ${outcome.error.details.slice(0, 60)}`
          : `dump ${((stats?.dumpTimeUs ?? 0) / 1000).toFixed(0)} ms, images ${((stats?.transferTimeUs ?? 0) / 1000).toFixed(0)} ms, restore ${((stats?.restoreTimeUs ?? 0) / 1000).toFixed(0)} ms`,
      });
      process.kill(hosts.b.hostPidOf(p.nsPid) ?? p.pid, "SIGKILL");
    },
    once,
  );

  bench(
    "CRIU's command line: stop-and-copy",
    async () => {
      const p = await holder(hosts.a);
      const dirA = join(hosts.a.dir, `cli-sc-${serial}`);
      const dirB = join(hosts.b.dir, `cli-sc-${serial}`);
      const t0 = process.hrtime.bigint();
      await must(hosts.a, "mkdir", "-p", dirA);
      await must(hosts.a, criu, "dump", "-t", String(p.nsPid), "-D", dirA, "-v0");
      await must(hosts.b, "cp", "-r", dirA, dirB);
      await must(hosts.b, criu, "restore", "-D", dirB, "-d", "-v0");
      rows.push({ how: "criu CLI, stop-and-copy", frozenMs: ms(t0) });
      process.kill(hosts.b.hostPidOf(p.nsPid) ?? 0, "SIGKILL");
      await must(hosts.a, "rm", "-rf", dirA, dirB);
    },
    once,
  );

  bench(
    "CRIU's command line: post-copy",
    async () => {
      const p = await holder(hosts.a);
      const dirA = join(hosts.a.dir, `cli-pc-${serial}`);
      const dirB = join(hosts.b.dir, `cli-pc-${serial}`);
      const port = "27100";
      await must(hosts.a, "mkdir", "-p", dirA);
      const t0 = process.hrtime.bigint();
      const dump = spawnWithStatus(hosts.a, [
        criu,
        "dump",
        "-t",
        String(p.nsPid),
        "-D",
        dirA,
        "--lazy-pages",
        "--address",
        hosts.a.ip,
        "--port",
        port,
        "--status-fd",
        "3",
        "-v0",
      ]);
      await Promise.race([
        dump.ready,
        dump.exited.then((c) => Promise.reject(new Error(`criu dump exited ${c}`))),
      ]);
      await must(hosts.b, "cp", "-r", dirA, dirB);
      const daemon = spawnWithStatus(hosts.b, [
        criu,
        "lazy-pages",
        "--page-server",
        "--address",
        hosts.a.ip,
        "--port",
        port,
        "-D",
        dirB,
        "--status-fd",
        "3",
        "-v0",
      ]);
      await daemon.ready;
      await must(hosts.b, criu, "restore", "-D", dirB, "--lazy-pages", "-d", "-v0");
      const frozenMs = ms(t0);
      const [dumped, pulled] = await Promise.all([dump.exited, daemon.exited]);
      rows.push({
        how: "criu CLI, post-copy",
        frozenMs,
        allMovedMs: ms(t0),
        note: dumped === 0 && pulled === 0 ? "" : `dump exited ${dumped}, lazy-pages ${pulled}`,
      });
      await waitFor(() => hosts.b.hostPidOf(p.nsPid) !== undefined, "the restored process");
      process.kill(hosts.b.hostPidOf(p.nsPid) ?? 0, "SIGKILL");
      await must(hosts.a, "rm", "-rf", dirA, dirB);
    },
    once,
  );
});
