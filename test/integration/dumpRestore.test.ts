// Real CRIU, real gRPC over a unix socket, real processes checkpointed and restored.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CheckResponse,
  CriuOptions,
  type DeleteCheckpointResponse,
  type DumpResponse,
  Durability,
  type FeatureCheckResponse,
  type GetCheckpointResponse,
  type ListCheckpointsResponse,
  type RestoreResponse,
  type VersionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { FINDING_NAMES } from "../../src/domain/hostFindings.js";
import { errorDetailOf } from "../../src/grpc/errorStatus.js";
import {
  call,
  dumpWith,
  failure,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { type Counter, isAlive, startCounter, waitFor } from "../support/workload.js";

let gw: TestGateway;
const processes = new TestProcesses();

beforeAll(async () => {
  gw = await startTestGateway();
});

afterAll(async () => {
  await gw.close();
});

afterEach(async () => {
  await processes.stopAll();
  // Every worker is reaped once its call has returned; nothing half-written is left in the store.
  await expectNothingLeft(gw);
});

function counter(name: string): Promise<Counter> {
  return processes.counter(gw.dir, name);
}

function dump(checkpointId: string, options: Partial<CriuOptions>, parent = ""): Promise<DumpResponse> {
  return dumpWith(gw.client, checkpointId, options, parent);
}

function restore(checkpointId: string, options: Partial<CriuOptions> = {}): Promise<RestoreResponse> {
  return restoreWith(gw.client, checkpointId, options);
}

describe("CRIU through the gateway", () => {
  it("reports CRIU's version and the gateway's", async () => {
    const v = await call<VersionResponse>((cb) => gw.client.version({}, cb));
    expect(v.majorNumber).toBeGreaterThanOrEqual(4);
    expect(v.minorNumber).toBeGreaterThanOrEqual(0);
    expect(v.gatewayVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("checks the kernel and reports features", async () => {
    // OK, with the host doctor's findings (hostDoctor.test.ts looks at them one by one).
    const checked = await call<CheckResponse>((cb) => gw.client.check({ options: undefined }, cb));
    expect(checked.findings.map((x) => x.name)).toEqual([...FINDING_NAMES]);
    const f = await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    expect(Object.keys(f).sort()).toEqual(["lazyPages", "memTrack", "pidfdStore"]);
    // pidfd_open and pidfd_getfd exist on every kernel CRIU 4 supports here (6.x).
    expect(f.pidfdStore).toBe(true);
  });

  it("dumps a counting process and restores it, and it counts on from where it was", async () => {
    const c = await counter("restore-me");
    const res = await dump("counted", { pid: c.pid });
    await c.exited; // the dump killed the tree (no leave_running)
    const atDump = c.read();
    expect(res.checkpoint?.checkpointId).toBe("counted");
    expect(res.checkpoint?.rootPid).toBe(c.pid);
    expect(res.checkpoint?.sizeBytes).toBeGreaterThan(0);
    expect(res.checkpoint?.criuVersion).toMatch(/^\d+\.\d+/);
    // Unspecified durability is FSYNC, and the checkpoint says which it got.
    expect(res.checkpoint?.durability).toBe(Durability.DURABILITY_FSYNC);
    expect(Math.abs((res.checkpoint?.createTime?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(existsSync(join(gw.imagesRoot, "counted", "dump.log"))).toBe(true);
    // Dead, and no longer counting.
    expect(isAlive(c.pid)).toBe(false);
    expect(c.read()).toBe(atDump);

    const restored = await restore("counted");
    processes.restored(restored.pid);
    expect(restored.pid).toBe(c.pid);
    expect(isAlive(restored.pid)).toBe(true);
    // Its first value after the restore continues the old count, not a fresh one from 0.
    const first = c.read();
    expect(first).toBeGreaterThanOrEqual(atDump);
    await waitFor(() => c.read() > atDump + 5, "the restored counter to count on");
  });

  it("dumps with leave_running: the process keeps counting and the checkpoint is listed", async () => {
    const c = await counter("keep-running");
    const res = await dump("running", { pid: c.pid, leaveRunning: true });
    expect(res.checkpoint?.leaveRunning).toBe(true);
    const after = c.read();
    await waitFor(() => c.read() > after + 3, "the counter to go on after the dump");
    expect(isAlive(c.pid)).toBe(true);
    const list = await call<ListCheckpointsResponse>((cb) => gw.client.listCheckpoints({}, cb));
    expect(list.checkpoints.map((x) => x.checkpointId)).toContain("running");
    const got = await call<GetCheckpointResponse>((cb) =>
      gw.client.getCheckpoint({ checkpointId: "running" }, cb),
    );
    expect(got.checkpoint?.rootPid).toBe(c.pid);

    // Restoring while the original still runs: its pid is taken.
    const err = await failure(restore("running"));
    expect(err.code).toBe(status.ALREADY_EXISTS);
    const detail = errorDetailOf(err);
    expect(detail?.crErrno).toBe(17);
    expect(detail?.requestType).toBe("RESTORE");
    expect(detail?.logTail.join("\n")).toMatch(/File exists|Restoring FAILED/);
    expect(isAlive(c.pid)).toBe(true);

    await call<DeleteCheckpointResponse>((cb) => gw.client.deleteCheckpoint({ checkpointId: "running" }, cb));
    const gone = await failure(call((cb) => gw.client.getCheckpoint({ checkpointId: "running" }, cb)));
    expect(gone.code).toBe(status.NOT_FOUND);
  });

  it("dumps with durability NONE: published whole, recorded as NONE, and it restores", async () => {
    const c = await counter("not-flushed");
    const request = {
      checkpointId: "not-flushed",
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ pid: c.pid }),
      durability: Durability.DURABILITY_NONE,
    };
    const res = await call<DumpResponse>((cb) => gw.client.dump(request, cb));
    await c.exited;
    expect(res.checkpoint?.durability).toBe(Durability.DURABILITY_NONE);
    const got = await call<GetCheckpointResponse>((cb) =>
      gw.client.getCheckpoint({ checkpointId: "not-flushed" }, cb),
    );
    expect(got.checkpoint?.durability).toBe(Durability.DURABILITY_NONE);
    expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
    const atDump = c.read();
    const restored = await restore("not-flushed");
    processes.restored(restored.pid);
    await waitFor(() => c.read() > atDump + 3, "the counter restored from unflushed images to count on");
  });

  it("refuses a durability it does not know with INVALID_ARGUMENT, before CRIU starts", async () => {
    const c = await counter("odd-durability");
    const request = {
      checkpointId: "odd",
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ pid: c.pid, leaveRunning: true }),
      durability: 7 as Durability,
    };
    const err = await failure(call<DumpResponse>((cb) => gw.client.dump(request, cb)));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/durability 7/);
    expect(existsSync(join(gw.imagesRoot, "odd"))).toBe(false);
  });

  it("refuses a duplicate checkpoint id with ALREADY_EXISTS and keeps the first", async () => {
    const c = await counter("dup");
    const first = await dump("dup", { pid: c.pid, leaveRunning: true });
    const err = await failure(dump("dup", { pid: c.pid, leaveRunning: true }));
    expect(err.code).toBe(status.ALREADY_EXISTS);
    expect(err.details).toContain("dup");
    const got = await call<GetCheckpointResponse>((cb) =>
      gw.client.getCheckpoint({ checkpointId: "dup" }, cb),
    );
    expect(got.checkpoint?.createTime).toEqual(first.checkpoint?.createTime);
  });

  it("answers a missing pid with NOT_FOUND and leaves nothing behind", async () => {
    // A pid above the kernel's pid_max cannot exist.
    const err = await failure(dump("ghost", { pid: 4_194_304 + 1 }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/no process with pid/);
    expect(existsSync(join(gw.imagesRoot, "ghost"))).toBe(false);
  });

  it("answers an unknown checkpoint with NOT_FOUND on restore, get and delete", async () => {
    for (const attempt of [
      () => restore("no-such-checkpoint"),
      () => call((cb) => gw.client.getCheckpoint({ checkpointId: "no-such-checkpoint" }, cb)),
      () => call((cb) => gw.client.deleteCheckpoint({ checkpointId: "no-such-checkpoint" }, cb)),
    ]) {
      const err = await failure(attempt());
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.details).toContain("no-such-checkpoint");
    }
  });

  it("answers bad ids and a missing pid with INVALID_ARGUMENT before starting CRIU", async () => {
    for (const id of ["", "../etc", "/abs", ".hidden", "a/b", "x".repeat(129)]) {
      const err = await failure(dump(id, { pid: process.pid + 1 }));
      expect(err.code, `id ${JSON.stringify(id)}`).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/checkpoint_id/);
    }
    const noPid = await failure(dump("nopid", {}));
    expect(noPid.code).toBe(status.INVALID_ARGUMENT);
    expect(noPid.details).toMatch(/options\.pid is required/);
  });

  it("refuses to dump the gateway itself or its ancestors", async () => {
    for (const pid of [process.pid, process.ppid, 1]) {
      const err = await failure(dump("self", { pid }));
      expect(err.code).toBe(status.PERMISSION_DENIED);
    }
  });

  it("refuses options no caller may use, naming them", async () => {
    const c = await counter("never");
    const err = await failure(
      dump("never", { pid: c.pid, configFile: "/tmp/evil.conf", execCmd: ["/bin/sh"] }),
    );
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toContain("config_file");
    expect(err.details).toContain("exec_cmd");
    expect(isAlive(c.pid)).toBe(true);
  });

  it.each([
    ["FSYNC", Durability.DURABILITY_FSYNC],
    ["NONE", Durability.DURABILITY_NONE],
  ])(
    "turns a dump CRIU refuses into FAILED_PRECONDITION with CRIU's log, publishing nothing (durability %s)",
    async (_name, durability) => {
      // A process whose session leader is outside the dumped tree: CRIU refuses it unless
      // shell_job is set.
      const c = await startCounter(gw.dir, "no-session", { session: "outside" });
      processes.adopt(c);
      const request = {
        checkpointId: "refused",
        parentCheckpointId: "",
        options: CriuOptions.fromPartial({ pid: c.pid }),
        durability,
      };
      const err = await failure(call<DumpResponse>((cb) => gw.client.dump(request, cb)));
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      const detail = errorDetailOf(err);
      expect(detail?.requestType).toBe("DUMP");
      expect(detail?.logTail.length).toBeGreaterThan(0);
      expect(existsSync(join(gw.imagesRoot, "refused"))).toBe(false);
      // CRIU let go of the process: it still runs and counts.
      const now = c.read();
      await waitFor(() => c.read() > now, "the refused process to keep counting");
    },
  );

  it("never half-dumps on a deadline: either the checkpoint exists and the process is gone, or neither", async () => {
    // Deadlines from "before CRIU starts" to "after it finished": every phase a cancellation can
    // hit. CRIU is vetoed at its next callback and rolls back, or it had already finished.
    for (const ms of [1, 10, 30, 60, 100, 200, 400]) {
      const c = await counter(`deadline-${ms}`);
      const id = `deadline-${ms}`;
      const outcome = await call<DumpResponse>((cb) =>
        gw.client.dump(
          { checkpointId: id, parentCheckpointId: "", options: CriuOptions.fromPartial({ pid: c.pid }) },
          new Metadata(),
          { deadline: Date.now() + ms },
          cb,
        ),
      ).then(
        () => "ok",
        (err: { code: number }) => err.code,
      );
      expect([status.DEADLINE_EXCEEDED, status.CANCELLED, "ok"]).toContain(outcome);
      // Wait for the gateway to finish with the dump: its worker gone.
      await waitFor(() => gw.gateway.workerPids().length === 0, "the worker to be reaped");
      await waitFor(
        () => readdirSync(gw.imagesRoot).filter((n) => n.startsWith(".")).length === 0,
        "the staging directory to be gone",
      );
      const published = existsSync(join(gw.imagesRoot, id));
      if (published) {
        await c.exited;
      } else {
        const now = c.read();
        await waitFor(() => c.read() > now, `the process of an abandoned dump (${ms} ms) to run on`);
      }
      expect(isAlive(c.pid), `deadline ${ms} ms: published=${published}`).toBe(!published);
    }
  });
});
