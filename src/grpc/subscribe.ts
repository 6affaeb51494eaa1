// CriuService.Subscribe: the event bus as a server stream, judged again on every policy change.
import type { SubscribeRequest, SubscribeResponse } from "../../gen/criu/gateway/v1/gateway.js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import { allowsCheckpoint } from "../auth/policy.js";
import { GatewayError } from "../domain/errors.js";
import type { EventBus, OperationKind } from "../domain/eventBus.js";
import { OPERATION_KIND_FROM_API, toApiEvent } from "./apiMessages.js";
import type { AdmittedContext, CallHandler } from "./callContext.js";

export interface SubscribeDeps {
  events: EventBus;
  gatekeeper: Gatekeeper;
  maxSubscribers: number;
}

export function createSubscribe(
  deps: SubscribeDeps,
): CallHandler<SubscribeRequest, SubscribeResponse, AdmittedContext> {
  return async function* subscribe({ first: request }, context) {
    const kinds = kindsOf(request);
    if (request.pid < 0) {
      throw new GatewayError("INVALID_ARGUMENT", `pid must be 0 (any) or a pid, not ${request.pid}`);
    }
    if (deps.events.subscriberCount >= deps.maxSubscribers) {
      throw new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the gateway already serves ${deps.maxSubscribers} subscribers`,
      );
    }
    // Taken last: nothing can fail after it but the stream itself, which gives it back.
    const release = deps.gatekeeper.acquireSubscriber(context.identity, context.admission.grant);
    // The grant in force: a policy reload judges the stream again, narrowing what it shows or
    // ending it when Subscribe is no longer granted.
    let grant = context.admission.grant;
    let revocation: { cause: unknown } | undefined;
    const subscription = deps.events.subscribe({
      kinds,
      pid: request.pid,
      checkpointId: request.checkpointId,
      // Administrators see everything; others only operations on checkpoints they may read (so
      // none of those without a checkpoint).
      visible: (id) => grant.admin || (id !== "" && allowsCheckpoint(grant, id, "read")),
    });
    const unwatch = deps.gatekeeper.onPolicyChange(() => {
      try {
        grant = deps.gatekeeper.grantNow(context.identity, "Subscribe");
      } catch (cause) {
        revocation = { cause };
        subscription.close();
      }
    });
    const close = () => subscription.close();
    context.signal.addEventListener("abort", close);
    try {
      // Ends when the client goes away or the gateway closes the bus (shutdown): cleanly then.
      for (let delivery = await subscription.next(); delivery; delivery = await subscription.next()) {
        if (revocation || context.signal.aborted) break;
        yield {
          event:
            "lost" in delivery
              ? { operationId: "", time: new Date(), eventsLost: { count: delivery.lost } }
              : toApiEvent(delivery.event),
        };
      }
      if (revocation) throw revocation.cause;
    } finally {
      context.signal.removeEventListener("abort", close);
      unwatch();
      subscription.close();
      release();
    }
  };
}

function kindsOf(request: SubscribeRequest): Set<OperationKind> {
  const kinds = new Set<OperationKind>();
  for (const k of request.kinds) {
    const kind = OPERATION_KIND_FROM_API[k];
    if (!kind) throw new GatewayError("INVALID_ARGUMENT", `kinds: ${k} is not an operation kind`);
    kinds.add(kind);
  }
  return kinds;
}
