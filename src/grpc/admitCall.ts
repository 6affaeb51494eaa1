// The pipeline's admission step: the call judged by the policy before anything runs, its slot
// held while it runs, and every further message held to the grant's size limit.
import type { Admission } from "../auth/admission.js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import { describeIdentity } from "../auth/identity.js";
import { inSpan } from "../observability/tracing.js";
import type { AdmittedContext, CallHandler, CallInput, IdentifiedContext, Judgement } from "./callContext.js";
import { wireBytes } from "./undecodable.js";

/** Admits calls whose first message `judge` reads as allowed; releases their slot when they end. */
export function admitCall<Req>(
  gatekeeper: Gatekeeper,
  judge: (first: Req) => Judgement,
): <Res>(next: CallHandler<Req, Res, AdmittedContext>) => CallHandler<Req, Res, IdentifiedContext> {
  return <Res>(next: CallHandler<Req, Res, AdmittedContext>): CallHandler<Req, Res, IdentifiedContext> =>
    async function* admitted(input, context) {
      const { rpcs = [context.method], access } = judge(input.first);
      access.requestBytes = wireBytes(input.first);
      context.record.access = access;
      const admission = await inSpan("admission", { "rpc.method": context.method }, () =>
        gatekeeper.admit(context.identity, rpcs, access),
      );
      context.record.admission = admission;
      let slotKept = false;
      try {
        yield* next(sizeChecked(input, admission), {
          ...context,
          admission,
          operation: {
            caller: describeIdentity(context.identity),
            signal: context.signal,
            guard: admission.guard,
          },
          keepSlot: () => {
            slotKept = true;
            return admission.release;
          },
        });
      } finally {
        if (!slotKept) admission.release();
      }
    };
}

function sizeChecked<Req>(input: CallInput<Req>, admission: Admission): CallInput<Req> {
  return {
    first: input.first,
    rest: (async function* () {
      for await (const message of input.rest) {
        admission.checkSize(wireBytes(message));
        yield message;
      }
    })(),
  };
}
