// The one way a CriuService call is served, whatever its shape: identify the caller, check that
// its messages decoded, admit it against the policy, audit it, run it with an AbortSignal, and
// map its error to a status. Each step is a small CallMiddleware; the grpc-js glue for each call
// shape (handleUnaryCall.ts, handleServerStreamingCall.ts, handleBidiStreamingCall.ts) is written
// once and knows nothing of the steps.
import type {
  handleBidiStreamingCall as GrpcBidiHandler,
  handleServerStreamingCall as GrpcServerStreamingHandler,
  handleUnaryCall as GrpcUnaryHandler,
} from "@grpc/grpc-js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import type { Logger } from "../log.js";
import { admitCall } from "./admitCall.js";
import { auditCall } from "./auditCall.js";
import type { AdmittedContext, CallHandler, CallInterceptor, Judgement } from "./callContext.js";
import { handleBidiStreamingCall } from "./handleBidiStreamingCall.js";
import { handleServerStreamingCall } from "./handleServerStreamingCall.js";
import { handleUnaryCall } from "./handleUnaryCall.js";
import { identifyCaller } from "./identifyCaller.js";
import { checkDecoded } from "./undecodable.js";
import type { UnixPeers } from "./unixListener.js";

export interface CallPipelineDeps {
  gatekeeper: Gatekeeper;
  unixPeers: UnixPeers;
  logger: Logger;
  /** Steps around every call, outermost first, that see its outcome as audited (metrics, tracing). */
  interceptors?: readonly CallInterceptor[];
}

/** An admitted call's implementation when it answers with one message. */
export type UnaryImplementation<Req, Res> = (request: Req, context: AdmittedContext) => Promise<Res>;

export interface CallPipeline {
  unary<Req, Res>(
    method: string,
    judge: (request: Req) => Judgement,
    implementation: UnaryImplementation<Req, Res>,
  ): GrpcUnaryHandler<Req, Res>;
  serverStreaming<Req, Res>(
    method: string,
    judge: (request: Req) => Judgement,
    implementation: CallHandler<Req, Res, AdmittedContext>,
  ): GrpcServerStreamingHandler<Req, Res>;
  /**
   * `empty` is the first message of a stream that ended before sending one; `pace` bounds the
   * messages held unread (see handleBidiStreamingCall).
   */
  bidiStreaming<Req, Res>(
    method: string,
    judge: (first: Req) => Judgement,
    implementation: CallHandler<Req, Res, AdmittedContext>,
    empty: Req,
    pace?: number,
  ): GrpcBidiHandler<Req, Res>;
}

export function createCallPipeline(deps: CallPipelineDeps): CallPipeline {
  const { gatekeeper, unixPeers, logger, interceptors = [] } = deps;
  const compose = <Req, Res>(
    judge: (first: Req) => Judgement,
    implementation: CallHandler<Req, Res, AdmittedContext>,
  ): CallHandler<Req, Res> => {
    const admitted = admitCall(gatekeeper, judge)(implementation);
    let handler = auditCall(gatekeeper)(identifyCaller(gatekeeper, unixPeers)(checkDecoded(admitted)));
    for (const intercept of [...interceptors].reverse()) handler = intercept(handler);
    return handler;
  };
  const onInternal = (method: string) => (cause: unknown) =>
    logger.log("error", "internal error", { method, error: cause });
  return {
    unary: (method, judge, implementation) =>
      handleUnaryCall(
        method,
        compose(judge, async function* (input, context) {
          yield await implementation(input.first, context);
        }),
        onInternal(method),
      ),
    serverStreaming: (method, judge, implementation) =>
      handleServerStreamingCall(method, compose(judge, implementation), onInternal(method)),
    bidiStreaming: (method, judge, implementation, empty, pace) =>
      handleBidiStreamingCall(method, compose(judge, implementation), empty, onInternal(method), pace),
  };
}
