// Iterative migration on one worker (Session iterative_dump): the protocol against a fake CRIU that
// serves CRIU's pre-dump loop, and the refusal real CRIU gets on a host without memory tracking.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointKind,
  CriuOptions,
  type CriuServiceClient,
  type FeatureCheckResponse,
  type ListCheckpointsResponse,
  type SessionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { CriuReqType } from "../../src/criu/wire.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";
import { call, criuChildren, startTestGateway, type TestGateway } from "../support/gateway.js";

/** A process to name as the dump's target (the fake CRIU dumps nothing). */
let target: ChildProcess;
let targetExited: Promise<void>;

beforeAll(() => {
  target = spawn("/bin/sleep", ["1000"], { stdio: "ignore" });
  targetExited = new Promise((resolve) => target.once("exit", () => resolve()));
});

afterAll(async () => {
  target.kill("SIGKILL");
  await targetExited;
  removeFakeCriuDirs();
});

interface IterativeOutcome {
  responses: SessionResponse[];
  error: ServiceError | undefined;
}

/**
 * Runs an iterative dump, answering each pre_dump_result with `step(n)`: "pre-dump", "dump", or
 * "hang-up" (end the request stream without choosing).
 */
function iterate(
  client: CriuServiceClient,
  checkpointId: string,
  pid: number,
  step: (n: number) => "pre-dump" | "dump" | "hang-up",
): Promise<IterativeOutcome> {
  return new Promise((resolve) => {
    const outcome: IterativeOutcome = { responses: [], error: undefined };
    const session = client.session();
    let preDumps = 0;
    session.on("data", (res: SessionResponse) => {
      outcome.responses.push(res);
      if (!res.preDumpResult) return;
      preDumps++;
      const choice = step(preDumps);
      if (choice === "hang-up") session.end();
      else session.write({ next: { finalDump: choice === "dump" } });
    });
    session.on("error", (err: ServiceError) => {
      outcome.error = err;
    });
    session.on("status", () => resolve(outcome));
    session.write({
      start: {
        iterativeDump: {
          checkpointId,
          parentCheckpointId: "",
          options: CriuOptions.fromPartial({ pid }),
        },
        callbackTimeoutMs: 0,
      },
    });
  });
}

async function checkpoints(client: CriuServiceClient) {
  return (await call<ListCheckpointsResponse>((cb) => client.listCheckpoints({}, cb))).checkpoints;
}

describe("iterative dump, against CRIU's pre-dump loop (fake CRIU)", () => {
  let gw: TestGateway;
  const fake = fakeCriu("criu-loop");

  beforeAll(async () => {
    gw = await startTestGateway({ criuBin: fake.bin });
  });

  afterAll(async () => {
    await gw.close();
  });

  afterEach(() => {
    expect(gw.gateway.workerPids()).toEqual([]);
    expect(criuChildren()).toEqual([]);
    expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("sends PRE_DUMP, PRE_DUMP, DUMP on one worker, each into a checkpoint on top of the last", async () => {
    const logStart = fake.log().length;
    const outcome = await iterate(gw.client, "mig", target.pid!, (n) => (n < 2 ? "pre-dump" : "dump"));
    expect(outcome.error).toBeUndefined();
    const kinds = outcome.responses.map((r) => Object.keys(r).find((k) => r[k as keyof SessionResponse]));
    expect(kinds).toEqual(["started", "preDumpResult", "preDumpResult", "dumpResult"]);
    expect(outcome.responses[1]?.preDumpResult?.checkpoint?.checkpointId).toBe("mig.pre-1");
    expect(outcome.responses[2]?.preDumpResult?.checkpoint?.parentCheckpointId).toBe("mig.pre-1");
    expect(outcome.responses[3]?.dumpResult?.checkpoint?.parentCheckpointId).toBe("mig.pre-2");

    const loop = fake
      .log()
      .slice(logStart)
      .filter(
        (e) => e.event === "request" && (e.type === CriuReqType.PRE_DUMP || e.type === CriuReqType.DUMP),
      );
    expect(loop.map((e) => [e.type, e.parentImg])).toEqual([
      [CriuReqType.PRE_DUMP, undefined],
      [CriuReqType.PRE_DUMP, "../mig.pre-1"],
      [CriuReqType.DUMP, "../mig.pre-2"],
    ]);
    // One worker served the whole loop.
    expect(new Set(loop.map((e) => e.pid)).size).toBe(1);

    const stored = new Map((await checkpoints(gw.client)).map((c) => [c.checkpointId, c]));
    expect(stored.get("mig.pre-1")?.kind).toBe(CheckpointKind.CHECKPOINT_KIND_PRE_DUMP);
    expect(stored.get("mig.pre-2")?.kind).toBe(CheckpointKind.CHECKPOINT_KIND_PRE_DUMP);
    expect(stored.get("mig")?.kind).toBe(CheckpointKind.CHECKPOINT_KIND_DUMP);
  });

  it("keeps the pre-dumps made and reaps the worker when the caller stops choosing", async () => {
    const outcome = await iterate(gw.client, "left", target.pid!, () => "hang-up");
    expect(outcome.error?.code).toBe(status.CANCELLED);
    expect(outcome.error?.details).toContain("stopped before choosing the next step");
    const ids = (await checkpoints(gw.client)).map((c) => c.checkpointId);
    expect(ids).toContain("left.pre-1");
    expect(ids).not.toContain("left");
  });

  it("refuses a checkpoint id too long for its pre-dump suffix", async () => {
    const outcome = await iterate(gw.client, "x".repeat(126), target.pid!, () => "dump");
    expect(outcome.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(outcome.error?.details).toContain(".pre-<n> suffix");
  });
});

describe("iterative dump with real CRIU on this host", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway();
  });

  afterAll(async () => {
    await gw.close();
  });

  it("is refused before any worker starts when the kernel lacks memory tracking", async () => {
    const features = await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    const outcome = await iterate(gw.client, "real", target.pid!, () => "dump");
    if (features.memTrack) {
      // A host with soft-dirty tracking runs the loop for real instead.
      expect(outcome.error).toBeUndefined();
      return;
    }
    expect(outcome.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(outcome.error?.details).toContain("mem_track=false");
    expect(outcome.responses.some((r) => r.preDumpResult)).toBe(false);
    expect(await checkpoints(gw.client)).toEqual([]);
    expect(gw.gateway.workerPids()).toEqual([]);
    expect(criuChildren()).toEqual([]);
  });
});
