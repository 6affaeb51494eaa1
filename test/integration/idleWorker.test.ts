// keep_open: with idle_worker_ms set, FeatureCheck reuses one kept CRIU worker (Version is
// answered without one once start-up has asked: test/integration/versionCache.test.ts).
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { FeatureCheckResponse, VersionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { call, criuChildren, startTestGateway } from "../support/gateway.js";

afterEach(() => {
  expect(criuChildren()).toEqual([]);
});

describe("a kept worker (CRIU's keep_open)", () => {
  it("serves Version and FeatureCheck one after another, and is reaped at shutdown", async () => {
    const gw = await startTestGateway({ idleWorkerMs: 60_000 });
    // Start-up asked for CRIU's version: that worker is the one kept.
    const kept = gw.gateway.workerPids();
    expect(kept).toHaveLength(1);
    const v = await call<VersionResponse>((cb) => gw.client.version({}, cb));
    expect(v.majorNumber).toBeGreaterThanOrEqual(4);
    expect(gw.gateway.workerPids()).toEqual(kept);
    await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    expect(gw.gateway.workerPids()).toEqual(kept);
    expect(criuChildren()).toEqual(kept);
    await gw.close();
    expect(gw.gateway.workerPids()).toEqual([]);
    expect(existsSync(`/proc/${kept[0]}`)).toBe(false);
  });

  it("is not kept when idle_worker_ms is 0 (the default)", async () => {
    const gw = await startTestGateway();
    await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    expect(gw.gateway.workerPids()).toEqual([]);
    await gw.close();
  });

  it("is replaced by a fresh worker when the kept one has died", async () => {
    const gw = await startTestGateway({ idleWorkerMs: 60_000 });
    const [kept] = gw.gateway.workerPids();
    process.kill(kept!, "SIGKILL");
    const features = await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    expect(features.lazyPages).toBe(true);
    await gw.close();
  });
});
