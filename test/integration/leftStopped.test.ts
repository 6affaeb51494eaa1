// A gateway that died while a migration held a tree stopped: on its next start it continues the
// source's copy and kills a target's restored one, as their records say (the real gateway, real
// processes).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { procState } from "../support/migration.js";
import { type Counter, startCounter, waitFor } from "../support/workload.js";

let gw: TestGateway | undefined;
const counters: Counter[] = [];
let work: string | undefined;

afterEach(async () => {
  for (const c of counters.splice(0)) c.kill();
  await gw?.close();
  gw = undefined;
  if (work) rmSync(work, { recursive: true, force: true });
});

function startTicksOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
}

async function stoppedCounter(name: string): Promise<Counter> {
  work ??= mkdtempSync(join(tmpdir(), "criu-gw-left-stopped-"));
  const counter = await startCounter(work, name);
  counters.push(counter);
  process.kill(counter.pid, "SIGSTOP");
  await waitFor(() => procState(counter.pid) === "T", `${name} to stop`);
  return counter;
}

it("continues a stopped source copy and kills a stopped target copy when it starts again", async () => {
  const source = await stoppedCounter("source-copy");
  const target = await stoppedCounter("target-copy");
  const record = (onRestart: string, c: Counter) =>
    JSON.stringify({ onRestart, processes: [{ pid: c.pid, startTicks: startTicksOf(c.pid) }] });
  gw = await startTestGateway((dir) => {
    // What the gateway that died left in its images root: the records of the two trees it held.
    const records = join(dir, "images", ".stopped-trees");
    mkdirSync(records, { recursive: true });
    writeFileSync(join(records, "continue-m1.json"), record("continue", source));
    writeFileSync(join(records, "kill-m2.json"), record("kill", target));
    return {};
  });
  const counted = source.read();
  await waitFor(() => source.read() > counted + 2, "the source's copy to count again");
  await target.exited;
  expect(readdirSync(gw.imagesRoot)).toEqual([]);
});
