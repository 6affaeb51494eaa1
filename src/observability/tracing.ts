// Traces through the OpenTelemetry API. Every layer may open a span here (it imports nothing of
// the project); with no SDK registered the API's spans are no-ops, so a gateway started without
// OTEL_* settings pays for a few empty calls and loads nothing more. `startTracing` loads the SDK
// and the OTLP exporter only when the standard environment variables ask for them.

import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

const TRACER_NAME = "criu-gateway";

/** The gateway's tracer; spans are no-ops until an SDK is registered. */
export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/** Whether the standard OTEL_* variables ask for traces to be exported. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === "none" || env.OTEL_SDK_DISABLED === "true") return false;
  return Boolean(exporter || env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Loads and registers the SDK with an OTLP/HTTP exporter (configured by the OTEL_EXPORTER_OTLP_*
 * variables) when the environment asks for traces; returns what flushes and stops it at shutdown.
 */
export async function startTracing(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ shutdown(): Promise<void> } | undefined> {
  if (!tracingRequested(env)) return undefined;
  const [
    { NodeTracerProvider },
    { BatchSpanProcessor, ConsoleSpanExporter },
    { OTLPTraceExporter },
    resources,
  ] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const exporter =
    env.OTEL_TRACES_EXPORTER?.trim() === "console" ? new ConsoleSpanExporter() : new OTLPTraceExporter();
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || TRACER_NAME }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  // Registers the W3C trace-context propagator and an AsyncLocalStorage context manager, so that
  // spans opened deeper in an operation find the RPC's span as their parent without being handed it.
  provider.register();
  return { shutdown: () => provider.shutdown() };
}

/** The trace context a caller sent in its metadata (W3C `traceparent`/`tracestate`), if any. */
export function contextFromMetadata(headers: Readonly<Record<string, string | undefined>>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => carrier[key],
  });
}

/**
 * Opens the server span of one RPC, child of the caller's trace context; the context returned
 * has it active, for running the handler in. The caller ends the span.
 */
export function startRpcSpan(
  parent: Context,
  rpc: { service: string; method: string },
): { span: Span; context: Context } {
  const attributes = { "rpc.system": "grpc", "rpc.service": rpc.service, "rpc.method": rpc.method };
  const span = tracer().startSpan(
    `${rpc.service}/${rpc.method}`,
    { kind: SpanKind.SERVER, attributes },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Runs `fn` as the server span of one RPC (see startRpcSpan), ending it when `fn` settles. */
export function inRpcSpan<T>(
  parent: Context,
  rpc: { service: string; method: string },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const { span, context: active } = startRpcSpan(parent, rpc);
  return context.with(active, () => finishing(span, fn));
}

/** The API's no-op provider, which a provider no SDK was registered with delegates to. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
/** What `fn` is handed when no SDK records spans. */
const UNRECORDED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether an SDK is registered, so that spans opened now are recorded. */
export function spansRecorded(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Runs `fn` in a child span of the current one; a thrown error marks the span and is rethrown.
 * Without an SDK `fn` just runs: a no-op span would still cost an OpenTelemetry context change
 * and a wrapping promise on every call.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!spansRecorded()) return unspanned(fn);
  return tracer().startActiveSpan(name, { attributes }, context.active(), (span) => finishing(span, fn));
}

function unspanned<T>(fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return fn(UNRECORDED);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Records a gRPC status on an RPC span: only non-OK codes are errors. */
export function setRpcStatus(span: Span, code: number, message: string): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message });
}

async function finishing<T>(span: Span, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}
