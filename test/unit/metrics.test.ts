import { describe, expect, it } from "vitest";
import type { GatewayEvent } from "../../src/domain/eventBus.js";
import { GatewayMetrics, grpcCodeName, type RpcLabels } from "../../src/observability/metrics.js";

const sources = {
  store: async () => ({ bytes: 4096, checkpoints: 3 }),
  workers: () => ({ running: 2, idle: 1 }),
  pageServers: () => 1,
  subscribers: () => 5,
  eventsDropped: () => 7,
};

const dump: RpcLabels = { service: "criu.gateway.v1.CriuService", method: "Dump", type: "unary" };

function event(operationId: string, payload: GatewayEvent["payload"]): GatewayEvent {
  return { operationId, time: new Date(), payload };
}

/** Every sample of the exposition as {name, labels, value}. */
async function samples(metrics: GatewayMetrics) {
  const families = await metrics.registry.getMetricsAsJSON();
  return families.flatMap((f) =>
    (f.values as { metricName?: string; labels: Record<string, string | number>; value: number }[]).map(
      (v) => ({
        name: v.metricName ?? f.name,
        labels: v.labels,
        value: v.value,
      }),
    ),
  );
}

describe("metrics", () => {
  it("counts RPCs with the grpc-ecosystem names, labels and code spellings", async () => {
    const metrics = new GatewayMetrics(sources, { processMetrics: false });
    metrics.rpcStarted(dump);
    metrics.messageReceived(dump);
    metrics.messageSent(dump);
    metrics.rpcHandled(dump, 9, 0.2);
    const text = (await metrics.exposition()).body;
    const labels = 'grpc_service="criu.gateway.v1.CriuService",grpc_method="Dump",grpc_type="unary"';
    expect(text).toContain(`grpc_server_started_total{${labels}} 1`);
    expect(text).toContain(`grpc_server_handled_total{${labels},grpc_code="FailedPrecondition"} 1`);
    expect(text).toContain(`grpc_server_msg_received_total{${labels}} 1`);
    expect(text).toContain(`grpc_server_msg_sent_total{${labels}} 1`);
    expect(text).toContain(`grpc_server_handling_seconds_bucket{le="0.25",${labels}} 1`);
    expect(text).toContain(`grpc_server_handling_seconds_bucket{le="0.1",${labels}} 0`);
  });

  it("spells every gRPC code as dashboards expect, and an unknown number as Unknown", () => {
    expect([0, 1, 4, 7, 8, 13, 14, 16].map(grpcCodeName)).toEqual([
      "OK",
      "Canceled",
      "DeadlineExceeded",
      "PermissionDenied",
      "ResourceExhausted",
      "Internal",
      "Unavailable",
      "Unauthenticated",
    ]);
    expect(grpcCodeName(99)).toBe("Unknown");
  });

  it("counts operations by kind and result from their events, with no ids in the labels", async () => {
    const metrics = new GatewayMetrics(sources, { processMetrics: false });
    for (const [id, code] of [
      ["op-1", "OK"],
      ["op-2", "OK"],
      ["op-3", "FAILED_PRECONDITION"],
    ] as const) {
      metrics.observeEvent(
        event(id, {
          type: "started",
          kind: "dump",
          caller: "uid:0",
          pid: 4242,
          checkpointId: `ck-${id}`,
          interactive: true,
        }),
      );
      metrics.observeEvent(
        event(id, {
          type: "callback-answered",
          sequence: 1,
          script: "post-dump",
          success: code === "OK",
          answeredBy: "caller",
        }),
      );
      metrics.observeEvent(
        event(id, { type: "finished", code, message: "", durationMs: 1500, restoredPid: 0 }),
      );
    }
    const all = await samples(metrics);
    const ops = all.filter((s) => s.name === "criu_gateway_operations_total");
    expect(ops).toEqual(
      expect.arrayContaining([
        { name: "criu_gateway_operations_total", labels: { kind: "dump", result: "OK" }, value: 2 },
        {
          name: "criu_gateway_operations_total",
          labels: { kind: "dump", result: "FAILED_PRECONDITION" },
          value: 1,
        },
      ]),
    );
    const answers = all.filter((s) => s.name === "criu_gateway_callback_answers_total");
    expect(answers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          labels: { script: "post-dump", answered_by: "caller", outcome: "success" },
          value: 2,
        }),
        expect.objectContaining({
          labels: { script: "post-dump", answered_by: "caller", outcome: "failure" },
          value: 1,
        }),
      ]),
    );
    // Cardinality: nothing that identifies one operation, process, caller or checkpoint.
    const values = all.flatMap((s) => Object.values(s.labels).map(String));
    for (const id of ["op-1", "4242", "uid:0", "ck-op-1"]) expect(values).not.toContain(id);
  });

  it("keeps CRIU's own statistics as histograms in seconds and pages", async () => {
    const metrics = new GatewayMetrics(sources, { processMetrics: false });
    metrics.dumpStatistics({
      freezingTimeUs: 3_000,
      frozenTimeUs: 180_000,
      memdumpTimeUs: 50_000,
      memwriteTimeUs: 90_000,
      pagesWritten: 65_536,
    });
    metrics.restoreStatistics({ restoreTimeUs: 400_000, pagesRestored: 300 });
    const text = (await metrics.exposition()).body;
    expect(text).toContain("criu_gateway_dump_frozen_seconds_sum 0.18");
    expect(text).toContain('criu_gateway_dump_frozen_seconds_bucket{le="0.25"} 1');
    expect(text).toContain('criu_gateway_dump_frozen_seconds_bucket{le="0.1"} 0');
    expect(text).toContain("criu_gateway_dump_pages_written_sum 65536");
    expect(text).toContain("criu_gateway_restore_seconds_sum 0.4");
    expect(text).toContain("criu_gateway_restore_pages_restored_count 1");
  });

  it("reads the store, workers, page servers and subscribers when scraped", async () => {
    let checkpoints = 3;
    const metrics = new GatewayMetrics(
      { ...sources, store: async () => ({ bytes: 8192, checkpoints }) },
      { processMetrics: false },
    );
    expect((await metrics.exposition()).body).toContain("criu_gateway_store_checkpoints 3");
    checkpoints = 4;
    const text = (await metrics.exposition()).body;
    expect(text).toContain("criu_gateway_store_checkpoints 4");
    expect(text).toContain("criu_gateway_store_size_bytes 8192");
    expect(text).toContain('criu_gateway_workers{state="running"} 2');
    expect(text).toContain('criu_gateway_workers{state="idle"} 1');
    expect(text).toContain("criu_gateway_page_servers 1");
    expect(text).toContain("criu_gateway_subscribers 5");
  });

  it("counts denials by reason, dropped events and store bytes", async () => {
    const metrics = new GatewayMetrics(sources, { processMetrics: false });
    metrics.policyDenied("process");
    metrics.policyDenied("process");
    metrics.storeBytes("written", 1024);
    const text = (await metrics.exposition()).body;
    expect(text).toContain('criu_gateway_policy_denials_total{reason="process"} 2');
    expect(text).toContain("criu_gateway_subscriber_events_dropped_total 7");
    expect(text).toContain('criu_gateway_store_bytes_total{direction="written"} 1024');
  });

  it("includes Node's process metrics by default", async () => {
    const metrics = new GatewayMetrics(sources);
    expect((await metrics.exposition()).body).toContain("process_resident_memory_bytes");
  });
});
