// One grpc-js server interceptor for what every call shares, whatever its shape or service:
// the grpc_server_* metrics and the RPC's trace span. It sits below the handlers, so health and
// reflection calls are counted too, and the span is active while the handler runs: spans opened
// deeper in an operation (admission, CRIU requests, callbacks, publishing) become its children.

import {
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type ServerMethodDefinition,
  status,
} from "@grpc/grpc-js";
import { type Context, context, type Span } from "@opentelemetry/api";
import type { GatewayMetrics, GrpcType, RpcLabels } from "../observability/metrics.js";
import { contextFromMetadata, setRpcStatus, startRpcSpan } from "../observability/tracing.js";

/** Splits "/pkg.Service/Method" and names the call shape as the metrics do. */
export function rpcLabels(definition: ServerMethodDefinition<unknown, unknown>): RpcLabels {
  const path = definition.path;
  const slash = path.lastIndexOf("/");
  const type: GrpcType = definition.requestStream
    ? definition.responseStream
      ? "bidi_stream"
      : "client_stream"
    : definition.responseStream
      ? "server_stream"
      : "unary";
  return { service: path.slice(1, slash), method: path.slice(slash + 1), type };
}

/** The interceptor; without metrics it still opens spans (which are no-ops without an SDK). */
export function telemetryInterceptor(metrics: GatewayMetrics | undefined): ServerInterceptor {
  return (definition, call) => instrumentCall(rpcLabels(definition), call, metrics);
}

function instrumentCall(
  rpc: RpcLabels,
  call: ServerInterceptingCallInterface,
  metrics: GatewayMetrics | undefined,
): ServerInterceptingCall {
  const startedAt = process.hrtime.bigint();
  let span: Span | undefined;
  let active: Context = context.active();
  let ended = false;
  const end = (code: number, details: string) => {
    if (ended) return;
    ended = true;
    metrics?.rpcHandled(rpc, code, Number(process.hrtime.bigint() - startedAt) / 1e9);
    if (span) {
      setRpcStatus(span, code, details);
      span.end();
    }
  };
  const inCall = (fn: () => void) => context.with(active, fn);
  return new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata: Metadata, nextMetadata) {
          metrics?.rpcStarted(rpc);
          const started = startRpcSpan(contextFromMetadata(traceHeaders(metadata)), rpc);
          span = started.span;
          active = started.context;
          inCall(() => nextMetadata(metadata));
        },
        onReceiveMessage(message, nextMessage) {
          metrics?.messageReceived(rpc);
          inCall(() => nextMessage(message));
        },
        onReceiveHalfClose(nextHalfClose) {
          inCall(() => nextHalfClose());
        },
        onCancel() {
          end(status.CANCELLED, "cancelled by the caller");
        },
      });
    },
    sendMessage(message, next) {
      metrics?.messageSent(rpc);
      next(message);
    },
    sendStatus(sent, next) {
      end(sent.code, sent.details ?? "");
      next(sent);
    },
  });
}

/** The W3C trace-context headers of the call's metadata, the only ones a span needs. */
function traceHeaders(metadata: Metadata): Record<string, string | undefined> {
  const header = (name: string) => {
    const value = metadata.get(name)[0];
    return typeof value === "string" ? value : undefined;
  };
  return { traceparent: header("traceparent"), tracestate: header("tracestate") };
}
