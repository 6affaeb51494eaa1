import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  contextFromMetadata,
  inRpcSpan,
  inSpan,
  setRpcStatus,
  spansRecorded,
  tracingRequested,
} from "../../src/observability/tracing.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const rpc = { service: "criu.gateway.v1.CriuService", method: "Dump" };

beforeAll(() => provider.register());
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});
beforeEach(() => exporter.reset());

describe("traces", () => {
  it("are exported only when the standard OTEL_* variables ask for them", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://x" })).toBe(
      false,
    );
    expect(tracingRequested({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" })).toBe(false);
  });

  it("are recorded once an SDK is registered", () => {
    expect(spansRecorded()).toBe(true);
  });

  it("make a caller's traceparent the parent of the RPC's span, and nest work under it", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = contextFromMetadata({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    await inRpcSpan(parent, rpc, async () => {
      await inSpan("admission", {}, async () => {});
      await inSpan("criu DUMP", { "criu.request": "DUMP" }, async () => {
        await inSpan("callback post-dump", {}, async () => {});
      });
    });
    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    const server = byName.get("criu.gateway.v1.CriuService/Dump");
    expect(server?.spanContext().traceId).toBe(traceId);
    expect(server?.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
    expect(byName.get("admission")?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(byName.get("criu DUMP")?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(byName.get("callback post-dump")?.parentSpanContext?.spanId).toBe(
      byName.get("criu DUMP")?.spanContext().spanId,
    );
    expect(spans.every((s) => s.spanContext().traceId === traceId)).toBe(true);
  });

  it("start a new trace when the caller sent none", async () => {
    await inRpcSpan(contextFromMetadata({}), rpc, async () => {});
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it("mark a failed RPC and a thrown error on their spans", async () => {
    await inRpcSpan(contextFromMetadata({}), rpc, async (span) =>
      setRpcStatus(span, 5, "no such checkpoint"),
    );
    await expect(inSpan("publish", {}, async () => Promise.reject(new Error("disk full")))).rejects.toThrow(
      "disk full",
    );
    const [failed, thrown] = exporter.getFinishedSpans();
    expect(failed?.status).toEqual({ code: 2, message: "no such checkpoint" });
    expect(failed?.attributes["rpc.grpc.status_code"]).toBe(5);
    expect(thrown?.status.code).toBe(2);
    expect(thrown?.events.map((e) => e.name)).toContain("exception");
  });
});
