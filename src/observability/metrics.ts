// The gateway's Prometheus metrics. The gRPC ones follow the names and labels of the
// go-grpc-prometheus / grpc-ecosystem conventions, so existing dashboards work unchanged; the
// gateway's own are named criu_gateway_*. Labels are closed sets (RPC names, operation kinds,
// status codes, reasons): never a checkpoint id, a pid or a caller, which would grow without bound.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { GatewayEvent, OperationKind } from "../domain/eventBus.js";

/** The call shapes, as go-grpc-prometheus names them in `grpc_type`. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

/** gRPC status codes by number, spelled as Go's codes.Code.String() (the `grpc_code` values dashboards expect). */
const GRPC_CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
] as const;

/** The label value for a gRPC status code number; unknown numbers count as Unknown. */
export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? "Unknown";
}

/** Why a call was refused by the policy: a closed set, so the label stays small. */
export type DenialReason =
  | "unauthenticated"
  | "rpc"
  | "process"
  | "checkpoint"
  | "option_class"
  | "limit"
  | "request_size"
  | "other";

/** CRIU's statistics of one dump, in the units its images give (microseconds, pages). */
export interface DumpFigures {
  freezingTimeUs: number;
  frozenTimeUs: number;
  memdumpTimeUs: number;
  memwriteTimeUs: number;
  pagesWritten: number;
}

/** CRIU's statistics of one restore. */
export interface RestoreFigures {
  restoreTimeUs: number;
  pagesRestored: number;
}

/** Read when Prometheus scrapes: values the gateway already knows, asked only then. */
export interface GaugeSources {
  /** Bytes and checkpoints in the image store. */
  store(): Promise<{ bytes: number; checkpoints: number }>;
  /** CRIU workers running an operation, and kept idle for the next one. */
  workers(): { running: number; idle: number };
  pageServers(): number;
  subscribers(): number;
  /** Events dropped so far over all subscribers (a running total). */
  eventsDropped(): number;
}

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** CRIU's own times, microseconds to minutes, in seconds. */
const CRIU_TIME_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PAGE_BUCKETS = [16, 256, 4096, 65_536, 262_144, 1_048_576, 4_194_304];

function grpcMetrics(registry: Registry) {
  const labelNames = ["grpc_service", "grpc_method", "grpc_type"] as const;
  const registers = [registry];
  return {
    started: new Counter({
      name: "grpc_server_started_total",
      help: "Total number of RPCs started on the server.",
      labelNames,
      registers,
    }),
    handled: new Counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: [...labelNames, "grpc_code"],
      registers,
    }),
    handlingSeconds: new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
      labelNames,
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    received: new Counter({
      name: "grpc_server_msg_received_total",
      help: "Total number of RPC stream messages received on the server.",
      labelNames,
      registers,
    }),
    sent: new Counter({
      name: "grpc_server_msg_sent_total",
      help: "Total number of gRPC stream messages sent by the server.",
      labelNames,
      registers,
    }),
  };
}

function operationMetrics(registry: Registry) {
  const registers = [registry];
  const seconds = (name: string, help: string) =>
    new Histogram({ name, help, buckets: CRIU_TIME_BUCKETS_S, registers });
  return {
    operations: new Counter({
      name: "criu_gateway_operations_total",
      help: "CRIU operations finished, by kind and result (a gRPC status code name).",
      labelNames: ["kind", "result"],
      registers,
    }),
    operationSeconds: new Histogram({
      name: "criu_gateway_operation_duration_seconds",
      help: "How long CRIU operations took, from the worker's start to the answer, by kind.",
      labelNames: ["kind"],
      buckets: LATENCY_BUCKETS_S,
      registers,
    }),
    callbackAnswers: new Counter({
      name: "criu_gateway_callback_answers_total",
      help: "CRIU notify callbacks answered, by script, who answered (caller, gateway, timeout, cancelled) and outcome.",
      labelNames: ["script", "answered_by", "outcome"],
      registers,
    }),
    freezing: seconds("criu_gateway_dump_freezing_seconds", "Time CRIU took to freeze a dumped tree."),
    frozen: seconds("criu_gateway_dump_frozen_seconds", "Time a dumped tree stayed frozen."),
    memdump: seconds(
      "criu_gateway_dump_memdump_seconds",
      "Time CRIU took to collect a dumped tree's memory.",
    ),
    memwrite: seconds(
      "criu_gateway_dump_memwrite_seconds",
      "Time CRIU took to write a dumped tree's memory.",
    ),
    pagesWritten: new Histogram({
      name: "criu_gateway_dump_pages_written",
      help: "Pages a dump wrote to its checkpoint.",
      buckets: PAGE_BUCKETS,
      registers,
    }),
    restore: seconds("criu_gateway_restore_seconds", "Time of a whole restore, as CRIU measured it."),
    pagesRestored: new Histogram({
      name: "criu_gateway_restore_pages_restored",
      help: "Pages of memory a restore brought back.",
      buckets: PAGE_BUCKETS,
      registers,
    }),
  };
}

function gatewayMetrics(registry: Registry) {
  const registers = [registry];
  return {
    storeBytes: new Counter({
      name: "criu_gateway_store_bytes_total",
      help: "Bytes written to and read from the image store by the gateway's own transfers, by direction.",
      labelNames: ["direction"],
      registers,
    }),
    denials: new Counter({
      name: "criu_gateway_policy_denials_total",
      help: "Calls the policy refused, by reason.",
      labelNames: ["reason"],
      registers,
    }),
  };
}

function scrapedGauges(registry: Registry, sources: GaugeSources): void {
  const registers = [registry];
  let droppedSeen = 0;
  new Counter({
    name: "criu_gateway_subscriber_events_dropped_total",
    help: "Events subscribers lost because they fell behind.",
    registers,
    collect() {
      const total = sources.eventsDropped();
      this.inc(Math.max(0, total - droppedSeen));
      droppedSeen = Math.max(droppedSeen, total);
    },
  });
  const storeBytes = new Gauge({
    name: "criu_gateway_store_size_bytes",
    help: "Bytes the image store's checkpoints take.",
    registers,
  });
  new Gauge({
    name: "criu_gateway_store_checkpoints",
    help: "Checkpoints in the image store.",
    registers,
    async collect() {
      const store = await sources.store();
      this.set(store.checkpoints);
      storeBytes.set(store.bytes);
    },
  });
  new Gauge({
    name: "criu_gateway_workers",
    help: "CRIU workers, by state (running an operation, or idle and kept for the next).",
    labelNames: ["state"],
    registers,
    collect() {
      const workers = sources.workers();
      this.set({ state: "running" }, workers.running);
      this.set({ state: "idle" }, workers.idle);
    },
  });
  new Gauge({
    name: "criu_gateway_page_servers",
    help: "CRIU page servers running.",
    registers,
    collect() {
      this.set(sources.pageServers());
    },
  });
  new Gauge({
    name: "criu_gateway_subscribers",
    help: "Subscribe streams open.",
    registers,
    collect() {
      this.set(sources.subscribers());
    },
  });
}

/** Identifies one RPC for the grpc_server_* metrics. */
export interface RpcLabels {
  /** The full service name, e.g. criu.gateway.v1.CriuService. */
  service: string;
  method: string;
  type: GrpcType;
}

/** Every metric the gateway keeps, with one method per thing that happens. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #grpc = grpcMetrics(this.registry);
  readonly #ops = operationMetrics(this.registry);
  readonly #gateway = gatewayMetrics(this.registry);
  /** Kinds of operations in flight, by operation id, until they finish. */
  readonly #kinds = new Map<string, OperationKind>();

  constructor(sources: GaugeSources, options: { processMetrics?: boolean } = {}) {
    scrapedGauges(this.registry, sources);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  rpcStarted(rpc: RpcLabels): void {
    this.#grpc.started.inc(grpcLabels(rpc));
  }

  rpcHandled(rpc: RpcLabels, code: number, seconds: number): void {
    const labels = grpcLabels(rpc);
    this.#grpc.handled.inc({ ...labels, grpc_code: grpcCodeName(code) });
    this.#grpc.handlingSeconds.observe(labels, seconds);
  }

  messageReceived(rpc: RpcLabels): void {
    this.#grpc.received.inc(grpcLabels(rpc));
  }

  messageSent(rpc: RpcLabels): void {
    this.#grpc.sent.inc(grpcLabels(rpc));
  }

  /** Counts operations and callback answers from the gateway's own event stream. */
  observeEvent(event: GatewayEvent): void {
    const { payload, operationId } = event;
    if (payload.type === "started") {
      this.#kinds.set(operationId, payload.kind);
    } else if (payload.type === "callback-answered") {
      const outcome = payload.success ? "success" : "failure";
      this.#ops.callbackAnswers.inc({ script: payload.script, answered_by: payload.answeredBy, outcome });
    } else if (payload.type === "finished") {
      const kind = this.#kinds.get(operationId);
      this.#kinds.delete(operationId);
      if (!kind) return;
      this.#ops.operations.inc({ kind, result: payload.code });
      this.#ops.operationSeconds.observe({ kind }, payload.durationMs / 1000);
      if (kind === "dump" && payload.dumpStatistics) this.dumpStatistics(payload.dumpStatistics);
      if (kind === "restore" && payload.restoreStatistics) this.restoreStatistics(payload.restoreStatistics);
    }
  }

  dumpStatistics(figures: DumpFigures): void {
    this.#ops.freezing.observe(figures.freezingTimeUs / 1e6);
    this.#ops.frozen.observe(figures.frozenTimeUs / 1e6);
    this.#ops.memdump.observe(figures.memdumpTimeUs / 1e6);
    this.#ops.memwrite.observe(figures.memwriteTimeUs / 1e6);
    this.#ops.pagesWritten.observe(figures.pagesWritten);
  }

  restoreStatistics(figures: RestoreFigures): void {
    this.#ops.restore.observe(figures.restoreTimeUs / 1e6);
    this.#ops.pagesRestored.observe(figures.pagesRestored);
  }

  storeBytes(direction: "written" | "read", bytes: number): void {
    this.#gateway.storeBytes.inc({ direction }, bytes);
  }

  policyDenied(reason: DenialReason): void {
    this.#gateway.denials.inc({ reason });
  }

  /** The exposition text Prometheus scrapes, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function grpcLabels(rpc: RpcLabels) {
  return { grpc_service: rpc.service, grpc_method: rpc.method, grpc_type: rpc.type };
}
