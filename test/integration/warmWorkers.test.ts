// Warm workers with real CRIU: `criu swrk` processes started ahead of need serve the calls, are
// replaced when one dies, and shutdown leaves none.
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { FeatureCheckResponse } from "../../gen/criu/gateway/v1/gateway.js";
import {
  call,
  criuChildren,
  dumpWith,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { TestProcesses } from "../support/processes.js";
import { isAlive, waitFor } from "../support/workload.js";

const processes = new TestProcesses();
let gw: TestGateway | undefined;

afterEach(async () => {
  await processes.stopAll();
  await gw?.close();
  gw = undefined;
  expect(criuChildren()).toEqual([]);
});

async function warmGateway(): Promise<TestGateway> {
  gw = await startTestGateway({ warmWorkers: 2 });
  const g = gw;
  await waitFor(() => g.gateway.readyWorkerPids().length === 2, "two warm workers");
  return g;
}

const gone = (pid: number) => waitFor(() => !existsSync(`/proc/${pid}`), `worker ${pid} to be reaped`);

describe("warm workers", () => {
  it("are CRIU workers waiting before any call, and a FeatureCheck is answered by one of them", async () => {
    const g = await warmGateway();
    const ready = g.gateway.readyWorkerPids();
    expect(criuChildren().sort()).toEqual([...ready].sort());
    const features = await call<FeatureCheckResponse>((cb) => g.client.featureCheck({}, cb));
    expect(features.lazyPages).toBe(true);
    // CRIU kept the worker that answered (keep_open): the same two workers, no new one started.
    expect(g.gateway.workerPids().sort()).toEqual([...ready].sort());
    expect(g.gateway.readyWorkerPids().sort()).toEqual([...ready].sort());
  });

  it("serve a dump and a restore, each on a worker started before the call, and are refilled", async () => {
    const g = await warmGateway();
    const c = await processes.counter(g.dir, "warm");
    const [first] = g.gateway.readyWorkerPids() as [number];
    const dumped = await dumpWith(g.client, "warm", { pid: c.pid });
    expect(dumped.checkpoint?.checkpointId).toBe("warm");
    await c.exited;
    // The oldest warm worker ran the dump, and was reaped after it; a new one took its place.
    await gone(first);
    expect(g.gateway.readyWorkerPids()).not.toContain(first);
    await waitFor(() => g.gateway.readyWorkerPids().length === 2, "the warm workers refilled");
    const [next] = g.gateway.readyWorkerPids() as [number];
    const restored = await restoreWith(g.client, "warm");
    processes.restored(restored.pid);
    expect(isAlive(restored.pid)).toBe(true);
    await gone(next);
    await waitFor(() => g.gateway.readyWorkerPids().length === 2, "the warm workers refilled again");
  });

  it("replace one that dies while it waits", async () => {
    const g = await warmGateway();
    const [victim] = g.gateway.readyWorkerPids() as [number];
    process.kill(victim, "SIGKILL");
    await waitFor(
      () => g.gateway.readyWorkerPids().length === 2 && !g.gateway.readyWorkerPids().includes(victim),
      "the dead warm worker to be replaced",
    );
    await gone(victim);
    const features = await call<FeatureCheckResponse>((cb) => g.client.featureCheck({}, cb));
    expect(features.lazyPages).toBe(true);
  });

  it("are not left behind by a gateway that fails to start", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const address = taken.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      await expect(
        startTestGateway({ warmWorkers: 2, insecure: true, listen: [`127.0.0.1:${port}`] }),
      ).rejects.toThrow();
      expect(criuChildren()).toEqual([]);
    } finally {
      taken.close();
    }
  });

  it("are all reaped at shutdown", async () => {
    const g = await warmGateway();
    const ready = g.gateway.readyWorkerPids();
    await g.gateway.shutdown(1_000);
    expect(g.gateway.workerPids()).toEqual([]);
    for (const pid of ready) expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(criuChildren()).toEqual([]);
  });
});
