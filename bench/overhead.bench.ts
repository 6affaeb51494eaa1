// What the gateway adds over talking to `criu swrk` directly: the same CRIU request, once over a
// bare worker and once through gRPC on a unix socket. Run with `npm run bench`.
import { afterAll, beforeAll, bench, describe } from "vitest";
import { SwrkWorker } from "../src/criu/swrkWorker.js";
import { CriuReqType } from "../src/criu/wire.js";
import { call, criuBin, startTestGateway, type TestGateway } from "../test/support/gateway.js";

let gw: TestGateway;
const bin = criuBin();

beforeAll(async () => {
  gw = await startTestGateway();
});

afterAll(async () => {
  await gw.close();
});

describe("VERSION: one fresh criu swrk worker per request", () => {
  bench(
    "direct: spawn criu swrk, VERSION, reap",
    async () => {
      const worker = SwrkWorker.start({ criuBin: bin });
      try {
        await worker.request({ type: CriuReqType.VERSION });
      } finally {
        await worker.close();
      }
    },
    { time: 3_000 },
  );

  bench(
    "gateway: Version over gRPC (unix socket)",
    async () => {
      await call((cb) => gw.client.version({}, cb));
    },
    { time: 3_000 },
  );
});

describe("FEATURE_CHECK (CRIU forks and probes the kernel)", () => {
  bench(
    "direct",
    async () => {
      const worker = SwrkWorker.start({ criuBin: bin });
      try {
        await worker.request({
          type: CriuReqType.FEATURE_CHECK,
          features: { memTrack: true, lazyPages: true, pidfdStore: true },
        });
      } finally {
        await worker.close();
      }
    },
    { time: 3_000 },
  );

  bench(
    "gateway",
    async () => {
      await call((cb) => gw.client.featureCheck({}, cb));
    },
    { time: 3_000 },
  );
});
