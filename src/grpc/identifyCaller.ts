// The pipeline's first step: who is calling, from what the transport proved.
import type { Gatekeeper } from "../auth/gatekeeper.js";
import type { CallContext, CallHandler, CallMiddleware, IdentifiedContext } from "./callContext.js";
import { forwardedClaim, transportIdentity } from "./callerIdentity.js";
import type { UnixPeers } from "./unixListener.js";

/**
 * Identifies the caller, or refuses a forwarded identity the policy does not believe; the audit
 * line of a refused call names what the transport alone proved.
 */
export function identifyCaller(
  gatekeeper: Gatekeeper,
  unixPeers: UnixPeers,
): CallMiddleware<CallContext, IdentifiedContext> {
  return <Req, Res>(next: CallHandler<Req, Res, IdentifiedContext>): CallHandler<Req, Res> =>
    async function* identified(input, context) {
      const direct = transportIdentity(context.transport, unixPeers);
      context.record.identity = direct;
      const identity = gatekeeper.identify(
        direct,
        forwardedClaim(context.transport, gatekeeper.forwardedHeader),
      );
      context.record.identity = identity;
      yield* next(input, { ...context, identity });
    };
}
