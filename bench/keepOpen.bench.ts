// What keep_open saves: Version through the gateway with a fresh `criu swrk` per call, and with one
// worker kept open between calls (idle_worker_ms). Run with `npm run bench`.
import { afterAll, beforeAll, bench, describe } from "vitest";
import { call, startTestGateway, type TestGateway } from "../test/support/gateway.js";

let fresh: TestGateway;
let kept: TestGateway;

beforeAll(async () => {
  [fresh, kept] = await Promise.all([startTestGateway(), startTestGateway({ idleWorkerMs: 60_000 })]);
});

afterAll(async () => {
  await Promise.all([fresh.close(), kept.close()]);
});

describe("Version over gRPC", () => {
  bench(
    "a fresh worker per call (idle_worker_ms 0)",
    async () => {
      await call((cb) => fresh.client.version({}, cb));
    },
    { time: 3_000 },
  );

  bench(
    "one kept worker (keep_open, idle_worker_ms 60000)",
    async () => {
      await call((cb) => kept.client.version({}, cb));
    },
    { time: 3_000 },
  );
});

describe("FeatureCheck over gRPC", () => {
  bench(
    "a fresh worker per call",
    async () => {
      await call((cb) => fresh.client.featureCheck({}, cb));
    },
    { time: 3_000 },
  );

  bench(
    "one kept worker",
    async () => {
      await call((cb) => kept.client.featureCheck({}, cb));
    },
    { time: 3_000 },
  );
});
