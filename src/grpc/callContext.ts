// The typed context a call carries through the pipeline (callPipeline.ts), extended by each step:
// the transport's facts first, then who the caller is, then what the policy let it do. Every call
// shape is seen the same way: a first message, the messages after it, and a stream of responses.
import type { AccessRequest, Admission } from "../auth/admission.js";
import type { Identity } from "../auth/identity.js";
import type { OperationContext } from "../domain/criuOperations.js";
import type { CallTransport } from "./callerIdentity.js";

/** What the call turned out to be, filled in by the steps as they learn it, for its audit line. */
export interface CallRecord {
  identity?: Identity;
  access?: AccessRequest;
  admission?: Admission;
}

export interface CallContext {
  /** The RPC's name, as the proto spells it. */
  method: string;
  /**
   * Aborted when the client cancels or goes away (reason: a CANCELLED GatewayError) or the
   * deadline passes (DEADLINE_EXCEEDED); shutdown past its grace period cancels calls too.
   */
  signal: AbortSignal;
  transport: CallTransport;
  /** process.hrtime.bigint() when the call arrived. */
  startedNs: bigint;
  record: CallRecord;
}

export interface IdentifiedContext extends CallContext {
  identity: Identity;
}

export interface AdmittedContext extends IdentifiedContext {
  admission: Admission;
  /** What the domain's operations take: the caller's name, the signal, the caller's guard. */
  operation: OperationContext;
  /**
   * Takes over the call's operation slot, for work that outlives the call (a page server): the
   * call's end no longer gives it back; the function returned does, once.
   */
  keepSlot(): () => void;
}

/** What a call carries in, whatever its shape. */
export interface CallInput<Req> {
  /** The message the call is judged by: the request, or a stream's first message. */
  first: Req;
  /** The messages after the first (a bidirectional stream's); empty for other shapes. */
  rest: AsyncIterable<Req>;
}

/** A call's implementation, or a step of the pipeline around it: responses as they are produced. */
export type CallHandler<Req, Res, Ctx extends CallContext = CallContext> = (
  input: CallInput<Req>,
  context: Ctx,
) => AsyncIterable<Res>;

/**
 * A step that wraps the rest of the pipeline for every call shape alike: it may extend the
 * context, check or transform the input, observe or transform the responses and the outcome.
 */
export type CallMiddleware<In extends CallContext, Out extends In> = <Req, Res>(
  next: CallHandler<Req, Res, Out>,
) => CallHandler<Req, Res, In>;

/** A per-call step that sees every call and its outcome (metrics, tracing). */
export type CallInterceptor = CallMiddleware<CallContext, CallContext>;

/** What a call would touch, judged from its first message: a Session also as what it runs. */
export interface Judgement {
  /** The RPCs the grant must allow; the method itself when absent. */
  rpcs?: readonly string[];
  access: AccessRequest;
}
