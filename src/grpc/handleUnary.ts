// grpc-js callback glue for unary calls, in one place: the caller identified and admitted by the
// gatekeeper before the handler runs, an AbortSignal that fires on cancellation, disconnection or
// deadline, errors mapped by toServiceError, and one audit line per call, denials included.
import { type handleUnaryCall, type ServerUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";
import type { OperationContext } from "../domain/criuOperations.js";
import { optionClassesUsed } from "../domain/criuOptions.js";
import { GatewayError } from "../domain/errors.js";
import { describeIdentity, type Identity } from "../domain/identity.js";
import {
  checkImagesForConfinedRestore as checkImages,
  checkRestoredTree,
} from "../domain/restoreConfinement.js";
import type { Logger } from "../log.js";
import { toServiceError } from "./errorStatus.js";
import type { AccessRequest, Admission, Gatekeeper } from "./gatekeeper.js";
import { assertDecoded, wireBytes } from "./undecodable.js";

export interface CallContext {
  /** Aborted when the client cancels, disconnects, or the deadline passes. */
  signal: AbortSignal;
  admission: Admission;
  /** What operations take: the caller's name, the signal, what its grant allows. */
  operation: OperationContext;
  /**
   * Takes over the call's operation slot, for work that outlives the call (a page server): the
   * call's end no longer gives it back; the function returned does, once.
   */
  keepSlot(): () => void;
}

export interface GuardDeps {
  logger: Logger;
  gatekeeper: Gatekeeper;
}

export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

/** The context an admitted call gives the operations it runs. */
export function operationContext(admission: Admission, signal: AbortSignal): OperationContext {
  return {
    caller: describeIdentity(admission.identity),
    signal,
    guard: {
      optionClasses: admission.grant.optionClasses,
      frozenTree: admission.frozenTree,
      confinedRestore: admission.grant.admin ? undefined : { checkImages, checkRestoredTree },
    },
  };
}

/** Writes one audit line for a call that ended with `code` (a grpc status). */
export function auditCall(
  deps: GuardDeps,
  method: string,
  identity: Identity | undefined,
  admission: Admission | undefined,
  access: AccessRequest | undefined,
  started: bigint,
  code: number,
  error?: string,
): void {
  deps.gatekeeper.audit({
    rpc: method,
    identity: identity ? describeIdentity(identity) : "unidentified",
    grant: admission?.grant.name ?? (identity ? deps.gatekeeper.grantName(identity) : undefined),
    pid: access?.dumpRoot ?? access?.pid,
    checkpoint: access?.checkpoints?.[0]?.id ?? access?.restoreOf,
    optionClasses: optionClassesUsed(access?.options),
    result: status[code] ?? String(code),
    durationMs: Math.round((Number(process.hrtime.bigint() - started) / 1e6) * 10) / 10,
    ...(error === undefined ? {} : { error }),
  });
}

export function handleUnary<Req, Res>(
  method: string,
  deps: GuardDeps,
  access: (request: Req) => AccessRequest,
  handler: UnaryHandler<Req, Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const started = process.hrtime.bigint();
    const controller = new AbortController();
    const onCancel = () =>
      controller.abort(new GatewayError("CANCELLED", "the call was cancelled by the client"));
    call.once("cancelled", onCancel);
    let deadlineTimer: NodeJS.Timeout | undefined;
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    if (Number.isFinite(deadlineMs)) {
      deadlineTimer = setTimeout(
        () => controller.abort(new GatewayError("DEADLINE_EXCEEDED", "the call's deadline passed")),
        Math.max(0, deadlineMs - Date.now()),
      );
    }
    let identity: Identity | undefined;
    let admission: Admission | undefined;
    let wanted: AccessRequest | undefined;
    let slotKept = false;
    const finish = (code: number, error?: unknown) => {
      call.removeListener("cancelled", onCancel);
      if (deadlineTimer) clearTimeout(deadlineTimer);
      if (!slotKept) admission?.release();
      auditCall(
        deps,
        method,
        identity,
        admission,
        wanted,
        started,
        code,
        error === undefined ? undefined : String((error as Error).message ?? error),
      );
    };
    const run = async (): Promise<Res> => {
      const who = deps.gatekeeper.identifyOrRefuse(call);
      identity = who.identity;
      if (who.refusal) throw who.refusal;
      assertDecoded(call.request);
      wanted = { ...access(call.request), requestBytes: wireBytes(call.request) };
      const admitted = await deps.gatekeeper.admit(identity, method, wanted);
      admission = admitted;
      return handler(call.request, {
        signal: controller.signal,
        admission: admitted,
        operation: operationContext(admitted, controller.signal),
        keepSlot: () => {
          slotKept = true;
          return admitted.release;
        },
      });
    };
    run().then(
      (response) => {
        finish(0);
        callback(null, response);
      },
      (err: unknown) => {
        const serviceError = toServiceError(err, (cause) =>
          deps.logger.log("error", "internal error", { method, error: cause }),
        );
        finish(serviceError.code ?? 2, err);
        callback(serviceError, null);
      },
    );
  };
}
