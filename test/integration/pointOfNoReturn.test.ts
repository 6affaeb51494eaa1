// A dump's point of no return (docs/reliability.md): the gateway's own files are written before
// CRIU is let stop the processes, so that a failure there vetoes; after it, the images are never
// removed. Real CRIU on a small tmpfs for full disks; the scripted fake for a worker that dies
// just after post-dump was answered (its pause after that answer is the trigger).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointState,
  type GetCheckpointResponse,
  type ListCheckpointsResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { errorDetailOf } from "../../src/grpc/errorStatus.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";
import {
  call,
  criuChildren,
  dumpWith,
  failure,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { TestProcesses } from "../support/processes.js";
import { dumpStart, runSession } from "../support/session.js";
import { fillUp, mountTmpfs } from "../support/tmpfs.js";
import { waitFor } from "../support/workload.js";

const processes = new TestProcesses();

afterEach(async () => {
  await processes.stopAll();
  expect(criuChildren()).toEqual([]);
});

afterAll(() => {
  removeFakeCriuDirs();
});

describe("a worker that dies after post-dump was answered", () => {
  let target: ChildProcess;
  beforeAll(() => {
    target = spawn("/bin/sleep", ["1000"], { stdio: "ignore" });
  });
  afterAll(() => {
    target.kill("SIGKILL");
  });

  it("leaves the dump kept as an UNCONFIRMED checkpoint, never removed", async () => {
    const fake = fakeCriu("notify", { pauseAfter: "post-dump" });
    const gw = await startTestGateway({ criuBin: fake.bin });
    try {
      const dumping = failure(dumpWith(gw.client, "kept", { pid: target.pid }));
      await waitFor(
        () =>
          fake.log().some((e) => e.event === "notify-answer" && e.script === "post-dump" && e.notifySuccess),
        "post-dump to be answered with success",
      );
      const [worker] = gw.gateway.workerPids();
      process.kill(worker!, "SIGKILL");
      const err = await dumping;
      expect(status[err.code]).toBe("ABORTED");
      expect(err.details).toMatch(/kept as checkpoint kept in state UNCONFIRMED/);
      const listed = await call<ListCheckpointsResponse>((cb) => gw.client.listCheckpoints({}, cb));
      expect(listed.checkpoints.map((c) => [c.checkpointId, c.state])).toEqual([
        ["kept", CheckpointState.CHECKPOINT_STATE_UNCONFIRMED],
      ]);
      expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
    } finally {
      await gw.close();
    }
  });
});

describe("a full image store", () => {
  let gw: TestGateway;
  const root = () => join(gw.dir, "store", "images");
  let unmount: () => void;

  beforeAll(async () => {
    gw = await startTestGateway((dir) => {
      unmount = mountTmpfs(join(dir, "store"), 64 * 1024 * 1024);
      return { imagesRoot: join(dir, "store", "images") };
    });
  });

  afterAll(async () => {
    await gw.close().catch(() => {});
    unmount();
  });

  afterEach(async () => {
    await import("node:fs/promises").then((fs) => fs.rm(join(gw.dir, "store", "filler"), { force: true }));
  });

  it("when the gateway's own files do not fit, vetoes the dump: RESOURCE_EXHAUSTED, the process runs on", async () => {
    const p = await processes.counter(gw.dir, "own-files");
    const outcome = await runSession(gw.client, dumpStart("no-room", { pid: p.pid }), async (callback) => {
      // CRIU's images are written; the store fills up before the gateway writes its own.
      if (callback.script === "post-dump") await fillUp(join(gw.dir, "store", "filler"));
      return { success: true };
    });
    expect(status[outcome.error?.code ?? 0]).toBe("RESOURCE_EXHAUSTED");
    expect(outcome.error?.details).toMatch(
      /could not write .*meta\.json: the file system is full \(\d+ bytes free\)/,
    );
    const now = p.read();
    await waitFor(() => p.read() > now, "the counter to count on after the veto");
    expect(existsSync(join(root(), "no-room"))).toBe(false);
    expect(readdirSync(root())).toEqual([]);
  });

  it("when CRIU's images do not fit, says so with RESOURCE_EXHAUSTED, and the process runs on", async () => {
    const p = await processes.counter(gw.dir, "images");
    await fillUp(join(gw.dir, "store", "filler"));
    // Room for CRIU's log and its first images, not for the memory.
    await import("node:fs/promises").then((fs) =>
      fs.truncate(join(gw.dir, "store", "filler"), 62 * 1024 * 1024),
    );
    const err = await failure(dumpWith(gw.client, "too-big", { pid: p.pid }));
    expect(status[err.code]).toBe("RESOURCE_EXHAUSTED");
    expect(err.details).toMatch(/CRIU could not write its images .* it is full \(\d+ bytes free\)/);
    expect(errorDetailOf(err)?.logTail.join("\n")).toMatch(/No space left on device/);
    const now = p.read();
    await waitFor(() => p.read() > now, "the counter to count on");
    expect(readdirSync(root())).toEqual([]);
    const missing = await failure(
      call<GetCheckpointResponse>((cb) => gw.client.getCheckpoint({ checkpointId: "too-big" }, cb)),
    );
    expect(status[missing.code]).toBe("NOT_FOUND");
  });
});
