// Metrics and traces, switched on by the configuration and the environment: a metrics registry
// fed by the domain's events and served on its own listener, the OpenTelemetry SDK when OTEL_*
// settings ask for it, and the server interceptor that counts and traces every call. With
// neither asked for, nothing is created and no call pays for it.
import type { ServerInterceptor } from "@grpc/grpc-js";
import type { AuditRecord } from "../auth/auditLog.js";
import { type GatewayConfig, isLoopback, parseListenAddress } from "../config.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import type { EventBus } from "../domain/eventBus.js";
import type { ImageStore } from "../domain/imageStore.js";
import { telemetryInterceptor } from "../grpc/telemetryInterceptor.js";
import { type DenialReason, GatewayMetrics } from "../observability/metrics.js";
import { type MetricsListener, startMetricsListener } from "../observability/metricsListener.js";
import { startTracing, tracingRequested } from "../observability/tracing.js";

export interface Telemetry {
  /** The interceptors the gRPC server is built with: none when nothing is observed. */
  interceptors: ServerInterceptor[];
  /** Where Prometheus scrapes, with the real port for "host:0"; undefined when off. */
  metricsAddress: string | undefined;
  /** Counts what the audit log records of refusals (called with every audit record). */
  audited(record: AuditRecord): void;
  /** Stops the metrics listener and flushes the traces. */
  close(): Promise<void>;
}

export interface TelemetrySources {
  store: ImageStore;
  events: EventBus;
  operations: CriuOperations;
}

export async function startTelemetry(config: GatewayConfig, sources: TelemetrySources): Promise<Telemetry> {
  const metrics = config.metricsListen ? createMetrics(sources) : undefined;
  const tracing = await startTracing();
  let listener: MetricsListener | undefined;
  if (metrics && config.metricsListen) {
    const where = parseListenAddress(config.metricsListen);
    const plain = where.kind === "unix" || (where.kind === "tcp" && isLoopback(where.host));
    listener = await startMetricsListener(metrics, {
      address: config.metricsListen,
      tls: plain ? undefined : config.tls,
    });
  }
  return {
    interceptors: metrics || tracingRequested() ? [telemetryInterceptor(metrics)] : [],
    metricsAddress: listener?.address,
    audited(record) {
      const reason = denialReason(record);
      if (metrics && reason) metrics.policyDenied(reason);
    },
    async close() {
      await listener?.close();
      await tracing?.shutdown();
    },
  };
}

function createMetrics({ store, events, operations }: TelemetrySources): GatewayMetrics {
  const metrics = new GatewayMetrics({
    store: async () => {
      const checkpoints = await store.list();
      return { bytes: checkpoints.reduce((sum, c) => sum + c.sizeBytes, 0), checkpoints: checkpoints.length };
    },
    workers: () => {
      // Warm workers and a worker kept open both wait for a call.
      const idle = operations.readyWorkerPids().length;
      return { running: Math.max(0, operations.workerPids().length - idle), idle };
    },
    pageServers: () => operations.listPageServers().length,
    subscribers: () => events.subscriberCount,
    eventsDropped: () => events.droppedTotal,
  });
  events.observe((event) => metrics.observeEvent(event));
  return metrics;
}

/**
 * Why the policy refused a call, from its audit record: a closed set of reasons for the metric's
 * label. Calls that failed for other reasons (CRIU's, the caller's input) are not denials.
 */
export function denialReason(record: AuditRecord): DenialReason | undefined {
  const error = record.error ?? "";
  if (record.result === "UNAUTHENTICATED") return "unauthenticated";
  if (record.result === "RESOURCE_EXHAUSTED") {
    if (/request|message|bytes/i.test(error)) return "request_size";
    return /limit|at once|concurrent|slot|subscri/i.test(error) ? "limit" : undefined;
  }
  if (record.result !== "PERMISSION_DENIED") return undefined;
  if (/no grant/i.test(error)) return "unauthenticated";
  if (/option|class/i.test(error)) return "option_class";
  if (/checkpoint/i.test(error)) return "checkpoint";
  if (/pid|process|uid|cgroup|tree/i.test(error)) return "process";
  if (/does not allow|rpc|not granted/i.test(error)) return "rpc";
  return "other";
}
