// What metrics and traces cost: VERSION and a small DUMP through a gateway with neither, and
// through one with a metrics listener and the OpenTelemetry SDK recording every span (into
// memory, so the exporter's network is not what is measured). Run with `npm run bench`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import { BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { call, dumpWith, startTestGateway, type TestGateway } from "../test/support/gateway.js";
import { type Counter, startCounter } from "../test/support/workload.js";

let plain: TestGateway;
let observed: TestGateway;
let counter: Counter;
let dir: string;
let n = 0;
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-bench-"));
  plain = await startTestGateway();
  observed = await startTestGateway({ metricsListen: "127.0.0.1:0" });
  counter = await startCounter(dir, "bench");
});

afterAll(async () => {
  counter.kill();
  await counter.exited;
  await plain.close();
  await observed.close();
  await provider.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const dumpOnce = (gw: TestGateway) =>
  dumpWith(gw.client, `bench-${n++}`, { pid: counter.pid, leaveRunning: true });

describe("metrics and traces off", () => {
  bench("VERSION", async () => void (await call((cb) => plain.client.version({}, cb))), { time: 3_000 });
  bench("small DUMP (leave_running)", async () => void (await dumpOnce(plain)), { time: 5_000 });
});

describe("metrics and traces on", () => {
  beforeAll(() => {
    provider.register();
  });
  afterAll(() => {
    trace.disable();
  });
  bench("VERSION", async () => void (await call((cb) => observed.client.version({}, cb))), { time: 3_000 });
  bench("small DUMP (leave_running)", async () => void (await dumpOnce(observed)), { time: 5_000 });
});
