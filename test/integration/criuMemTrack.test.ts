// Why the gateway refuses pre-dumps and track_mem where the kernel has no dirty-memory tracking:
// what real CRIU does when asked anyway, through a bare worker (no gateway in between), with the
// options the gateway would have sent.
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import { SwrkWorker } from "../../src/criu/swrkWorker.js";
import { type CriuReq, CriuReqType } from "../../src/criu/wire.js";
import { toCriuOpts } from "../../src/domain/criuOptions.js";
import { criuBin } from "../support/gateway.js";
import { type Counter, startCounter, waitFor } from "../support/workload.js";

let dir: string;
let counter: Counter;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-memtrack-"));
  counter = await startCounter(dir, "memtrack");
});

afterEach(async () => {
  counter.child.kill("SIGKILL");
  await counter.exited;
  rmSync(dir, { recursive: true, force: true });
});

/** One request on a fresh worker, with `dir` as images directory; the worker is always reaped. */
async function ask(req: (imagesDirFd: number) => CriuReq) {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  const worker = SwrkWorker.start({ criuBin: criuBin() });
  try {
    return await worker.request(req(fd));
  } finally {
    await worker.close();
    closeSync(fd);
  }
}

async function memTrack(): Promise<boolean> {
  const resp = await ask(() => ({ type: CriuReqType.FEATURE_CHECK, features: { memTrack: true } }));
  return resp.features?.memTrack ?? false;
}

test("without dirty-memory tracking CRIU refuses track_mem, and a pre-dump aborts CRIU", async () => {
  const tracked = await memTrack();
  const dump = await ask((fd) => ({
    type: CriuReqType.DUMP,
    opts: toCriuOpts(CriuOptions.fromPartial({ pid: counter.pid, trackMem: true, leaveRunning: true }), {
      imagesDirFd: fd,
      logFile: "dump.log",
    }),
  }));
  const pre = await ask((fd) => ({
    type: CriuReqType.SINGLE_PRE_DUMP,
    opts: toCriuOpts(CriuOptions.fromPartial({ pid: counter.pid, logLevel: 4 }), {
      imagesDirFd: fd,
      logFile: "pre.log",
    }),
  }));
  if (tracked) {
    expect(dump.success).toBe(true);
    expect(pre.success).toBe(true);
  } else {
    expect(dump.success).toBe(false);
    expect(readFileSync(join(dir, "dump.log"), "utf8")).toMatch(/Tracking memory is not available/);
    // CRIU forces track_mem on for a pre-dump and then hits BUG_ON(!kdat.has_dirty_track): its
    // pre-dump process aborts, and the worker's answer does not say why. CRIU 4.2 answers with the
    // first error it logged, if any (where CRIU lacks CAP_SYS_RESOURCE, the RLIMIT_NOFILE line),
    // which is never about memory tracking.
    expect(pre.success).toBe(false);
    expect(pre.crErrmsg ?? "").not.toMatch(/track|dirty|mem\.c|BUG/i);
    const log = readFileSync(join(dir, "pre.log"), "utf8");
    expect(log).toMatch(/Enforcing memory tracking for pre-dump/);
    expect(log).toMatch(/BUG at criu\/mem\.c/);
  }
  // Either way the process runs on.
  const now = counter.read();
  await waitFor(() => counter.read() > now, "the counter to keep counting");
});
