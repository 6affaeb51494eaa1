// Traces of real calls: an in-memory exporter behind the OpenTelemetry SDK, a real gateway in this
// process, a real dump through real CRIU, and a client that sends its own traceparent.
import { Metadata } from "@grpc/grpc-js";
import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CriuOptions, type DumpResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { call, startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let gw: TestGateway;
const processes = new TestProcesses();

beforeAll(async () => {
  provider.register();
  // The interceptor that opens each RPC's span is installed when metrics or traces are on.
  gw = await startTestGateway({ metricsListen: "127.0.0.1:0" });
});

afterAll(async () => {
  await gw?.close();
  await provider.shutdown();
  trace.disable();
});

beforeEach(() => exporter.reset());

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(gw);
});

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";

function childrenOf(spans: ReadableSpan[], parent: ReadableSpan | undefined): ReadableSpan[] {
  return spans.filter((s) => s.parentSpanContext?.spanId === parent?.spanContext().spanId);
}

describe("traces (issue: observable in production)", () => {
  it("a dump is one span under the caller's traceparent, with admission, CRIU's request, its callbacks, staging and publishing inside", async () => {
    const c = await processes.counter(gw.dir, "traced");
    const metadata = new Metadata();
    metadata.set("traceparent", `00-${TRACE_ID}-${CLIENT_SPAN}-01`);
    await call<DumpResponse>((cb) =>
      gw.client.dump(
        {
          checkpointId: "traced",
          parentCheckpointId: "",
          options: CriuOptions.fromPartial({ pid: c.pid, leaveRunning: true }),
        },
        metadata,
        cb,
      ),
    );
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE_ID);
    const rpc = spans.find((s) => s.name === "criu.gateway.v1.CriuService/Dump");
    expect(rpc?.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(rpc?.attributes["rpc.grpc.status_code"]).toBe(0);
    const inside = childrenOf(spans, rpc).map((s) => s.name);
    expect(inside).toEqual(expect.arrayContaining(["admission", "stage", "criu DUMP", "publish"]));
    const criu = spans.find((s) => s.name === "criu DUMP");
    const callbacks = childrenOf(spans, criu).map((s) => s.name);
    // The gateway turns callbacks on for every dump; these are the ones CRIU makes on a dump.
    expect(callbacks).toEqual(expect.arrayContaining(["callback pre-dump", "callback post-dump"]));
    // Every span of the call belongs to the caller's trace.
    expect(exporter.getFinishedSpans().filter((s) => s.name.startsWith("callback "))).toHaveLength(
      spans.filter((s) => s.name.startsWith("callback ")).length,
    );
  });

  it("a refused call's span carries its status", async () => {
    await expect(
      call<DumpResponse>((cb) =>
        gw.client.dump({ checkpointId: "../escape", parentCheckpointId: "", options: undefined }, cb),
      ),
    ).rejects.toThrow();
    const rpc = exporter.getFinishedSpans().find((s) => s.name === "criu.gateway.v1.CriuService/Dump");
    expect(rpc?.attributes["rpc.grpc.status_code"]).toBe(3);
    expect(rpc?.status.code).toBe(2);
  });
});
