// CriuService.Subscribe: the event bus as a server stream, paced by the client's reading.
import { type handleServerStreamingCall, type ServerWritableStream, status } from "@grpc/grpc-js";
import {
  OperationKind as ApiKind,
  type Event,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { GatewayError } from "../domain/errors.js";
import type { EventBus, GatewayEvent, OperationKind } from "../domain/eventBus.js";
import { allowsCheckpoint } from "../domain/policy.js";
import type { Logger } from "../log.js";
import { statusCodeOf, toServiceError } from "./errorStatus.js";
import type { Admission, Gatekeeper } from "./gatekeeper.js";
import { auditCall } from "./handleUnary.js";
import { assertDecoded, wireBytes } from "./undecodable.js";

export interface SubscribeDeps {
  events: EventBus;
  logger: Logger;
  gatekeeper: Gatekeeper;
  maxSubscribers: number;
}

/** Messages written to the stream and not yet flushed, per subscriber. */
const IN_FLIGHT = 16;

const KIND_FROM_API: Partial<Record<ApiKind, OperationKind>> = {
  [ApiKind.OPERATION_KIND_DUMP]: "dump",
  [ApiKind.OPERATION_KIND_RESTORE]: "restore",
  [ApiKind.OPERATION_KIND_CHECK]: "check",
  [ApiKind.OPERATION_KIND_FEATURE_CHECK]: "feature-check",
  [ApiKind.OPERATION_KIND_VERSION]: "version",
  [ApiKind.OPERATION_KIND_PRE_DUMP]: "pre-dump",
  [ApiKind.OPERATION_KIND_WAIT_PID]: "wait-pid",
  [ApiKind.OPERATION_KIND_CPUINFO_DUMP]: "cpuinfo-dump",
  [ApiKind.OPERATION_KIND_CPUINFO_CHECK]: "cpuinfo-check",
  [ApiKind.OPERATION_KIND_PAGE_SERVER]: "page-server",
  [ApiKind.OPERATION_KIND_ITERATIVE_DUMP]: "iterative-dump",
  [ApiKind.OPERATION_KIND_EXPORT]: "export",
  [ApiKind.OPERATION_KIND_IMPORT]: "import",
  [ApiKind.OPERATION_KIND_PUSH]: "push",
};

const KIND_TO_API: Record<OperationKind, ApiKind> = {
  dump: ApiKind.OPERATION_KIND_DUMP,
  restore: ApiKind.OPERATION_KIND_RESTORE,
  check: ApiKind.OPERATION_KIND_CHECK,
  "feature-check": ApiKind.OPERATION_KIND_FEATURE_CHECK,
  version: ApiKind.OPERATION_KIND_VERSION,
  "pre-dump": ApiKind.OPERATION_KIND_PRE_DUMP,
  "wait-pid": ApiKind.OPERATION_KIND_WAIT_PID,
  "cpuinfo-dump": ApiKind.OPERATION_KIND_CPUINFO_DUMP,
  "cpuinfo-check": ApiKind.OPERATION_KIND_CPUINFO_CHECK,
  "page-server": ApiKind.OPERATION_KIND_PAGE_SERVER,
  "iterative-dump": ApiKind.OPERATION_KIND_ITERATIVE_DUMP,
  export: ApiKind.OPERATION_KIND_EXPORT,
  import: ApiKind.OPERATION_KIND_IMPORT,
  push: ApiKind.OPERATION_KIND_PUSH,
};

export function toApiEvent(e: GatewayEvent): Event {
  const base: Event = { operationId: e.operationId, time: e.time };
  const p = e.payload;
  switch (p.type) {
    case "started":
      return {
        ...base,
        started: {
          kind: KIND_TO_API[p.kind],
          caller: p.caller,
          pid: p.pid,
          checkpointId: p.checkpointId,
          interactive: p.interactive,
        },
      };
    case "callback":
      return { ...base, callback: { sequence: p.sequence, script: p.script, pid: p.pid } };
    case "callback-answered":
      return {
        ...base,
        callbackAnswered: {
          sequence: p.sequence,
          script: p.script,
          success: p.success,
          answeredBy: p.answeredBy,
        },
      };
    case "finished":
      return {
        ...base,
        finished: {
          code: p.code === "OK" ? 0 : statusCodeOf(p.code),
          message: p.message,
          durationMs: p.durationMs,
          restoredPid: p.restoredPid,
        },
      };
    case "progress":
      return { ...base, transferProgress: { bytesDone: p.bytesDone, bytesTotal: p.bytesTotal } };
  }
}

export function createSubscribeHandler(
  deps: SubscribeDeps,
): handleServerStreamingCall<SubscribeRequest, SubscribeResponse> {
  return (call: ServerWritableStream<SubscribeRequest, SubscribeResponse>) => {
    void serve(call, deps);
  };
}

async function serve(
  call: ServerWritableStream<SubscribeRequest, SubscribeResponse>,
  deps: SubscribeDeps,
): Promise<void> {
  const started = process.hrtime.bigint();
  const guard = { logger: deps.logger, gatekeeper: deps.gatekeeper };
  const { identity, refusal } = deps.gatekeeper.identifyOrRefuse(call);
  let admission: Admission | undefined;
  const fail = (err: unknown) => {
    const serviceError = toServiceError(err, (cause) =>
      deps.logger.log("error", "internal error", { method: "Subscribe", error: cause }),
    );
    auditCall(
      guard,
      "Subscribe",
      identity,
      admission,
      {},
      started,
      serviceError.code ?? 2,
      serviceError.details,
    );
    call.emit("error", serviceError);
  };
  const kinds = new Set<OperationKind>();
  let releaseSlot: () => void;
  try {
    if (refusal) throw refusal;
    assertDecoded(call.request);
    admission = await deps.gatekeeper.admit(identity, "Subscribe", { requestBytes: wireBytes(call.request) });
    for (const k of call.request.kinds) {
      const kind = KIND_FROM_API[k];
      if (!kind) throw new GatewayError("INVALID_ARGUMENT", `kinds: ${k} is not an operation kind`);
      kinds.add(kind);
    }
    if (call.request.pid < 0) {
      throw new GatewayError("INVALID_ARGUMENT", `pid must be 0 (any) or a pid, not ${call.request.pid}`);
    }
    if (deps.events.subscriberCount >= deps.maxSubscribers) {
      throw new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the gateway already serves ${deps.maxSubscribers} subscribers`,
      );
    }
    // Taken last: nothing can fail after it but the stream itself, which gives it back.
    releaseSlot = deps.gatekeeper.acquireSubscriber(identity, admission.grant);
  } catch (err) {
    fail(err);
    return;
  }
  // The grant in force: a policy reload judges the stream again, narrowing what it shows or
  // ending it when Subscribe is no longer granted.
  let grant = admission.grant;
  const admitted = admission;
  let ended = false;
  const endAudit = (code = call.cancelled ? status.CANCELLED : status.OK, error?: string) => {
    if (ended) return;
    ended = true;
    unwatch();
    releaseSlot();
    auditCall(guard, "Subscribe", identity, admitted, {}, started, code, error);
  };
  const subscription = deps.events.subscribe({
    kinds,
    pid: call.request.pid,
    checkpointId: call.request.checkpointId,
    // Administrators see everything; others only operations on checkpoints they may read (so
    // none of those without a checkpoint).
    visible: (id) => grant.admin || (id !== "" && allowsCheckpoint(grant, id, "read")),
  });
  let inFlight = 0;
  let closed = false;
  let revoked = false;
  let wakeWriter: () => void = () => {};
  const stop = () => {
    closed = true;
    subscription.close();
    wakeWriter();
    endAudit();
  };
  const unwatch = deps.gatekeeper.onPolicyChange(() => {
    try {
      grant = deps.gatekeeper.grantNow(identity, "Subscribe");
    } catch (err) {
      const revocation = toServiceError(err, () => {});
      revoked = true;
      endAudit(revocation.code, revocation.details);
      stop();
      if (!call.cancelled && !call.writableEnded) call.emit("error", revocation);
    }
  });
  call.on("cancelled", stop);
  call.on("close", stop);
  call.on("error", stop);
  void (async () => {
    for (;;) {
      const delivery = await subscription.next();
      if (!delivery) {
        // Closed by the gateway (shutdown) rather than by the client: end the stream cleanly.
        if (!revoked && !call.cancelled && !call.writableEnded) call.end();
        endAudit();
        break;
      }
      const event: Event =
        "lost" in delivery
          ? { operationId: "", time: new Date(), eventsLost: { count: delivery.lost } }
          : toApiEvent(delivery.event);
      // At most IN_FLIGHT messages may sit in grpc-js's and HTTP/2's buffers: beyond that the
      // subscription's own bounded queue takes the backlog, where overflow is counted.
      inFlight++;
      call.write({ event }, () => {
        inFlight--;
        wakeWriter();
      });
      while (inFlight >= IN_FLIGHT && !closed) {
        await new Promise<void>((resolve) => {
          wakeWriter = resolve;
        });
      }
    }
  })();
}
