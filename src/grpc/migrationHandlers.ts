// CriuService.Migrate and CriuService.AcceptMigration: the grpc-js glue around the migration's
// two sides (src/domain/migration): admission by the policy, cancellation, audit, status.
import type {
  handleBidiStreamingCall,
  handleServerStreamingCall,
  ServerDuplexStream,
  ServerWritableStream,
} from "@grpc/grpc-js";
import {
  type AcceptMigrationRequest,
  type AcceptMigrationResponse,
  CriuOptions,
  type MigrateRequest,
  type MigrateResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import { GatewayError } from "../domain/errors.js";
import type { Identity } from "../domain/identity.js";
import type { ImageStore } from "../domain/imageStore.js";
import { acceptMigration } from "../domain/migration/acceptMigration.js";
import { migrateFromSource } from "../domain/migration/migrateSource.js";
import { kernelLimits } from "../domain/migration/migrationMode.js";
import type { Logger } from "../log.js";
import { toServiceError } from "./errorStatus.js";
import type { AccessRequest, Admission, Gatekeeper } from "./gatekeeper.js";
import { auditCall, operationContext } from "./handleUnary.js";
import { connectTarget, type TargetSettings } from "./migrationClient.js";
import { acceptResponseOf, migrateResponseOf, modeFromApi, toTargetOf } from "./migrationCodec.js";
import { checkPushTarget } from "./pushClient.js";
import { StreamQueue, writeWithDrain } from "./streamQueue.js";
import { assertDecoded, wireBytes } from "./undecodable.js";

export interface MigrationDeps {
  operations: CriuOperations;
  store: ImageStore;
  logger: Logger;
  gatekeeper: Gatekeeper;
  targets: TargetSettings;
}

type AnyCall = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

/** One streaming call's admission, cancellation and audit line. */
function beginCall(method: string, call: AnyCall, deps: MigrationDeps) {
  const started = process.hrtime.bigint();
  const controller = new AbortController();
  call.once("cancelled", () =>
    controller.abort(new GatewayError("CANCELLED", "the call was cancelled by the client")),
  );
  let identity: Identity | undefined;
  let admission: Admission | undefined;
  let access: AccessRequest | undefined;
  const guard = { logger: deps.logger, gatekeeper: deps.gatekeeper };
  return {
    signal: controller.signal,
    identity: () => identity,
    async admit(rpcs: readonly string[], wanted: AccessRequest) {
      const who = deps.gatekeeper.identifyOrRefuse(call);
      identity = who.identity;
      if (who.refusal) throw who.refusal;
      access = wanted;
      admission = await deps.gatekeeper.admit(identity, rpcs, wanted);
      return { identity, context: operationContext(admission, controller.signal) };
    },
    /** Ends the call: OK without `err`, else its status. */
    end(err?: unknown) {
      admission?.release();
      if (err === undefined) {
        auditCall(guard, method, identity, admission, access, started, 0);
        call.end();
        return;
      }
      const failure = toServiceError(err, (cause) =>
        deps.logger.log("error", "internal error", { method, error: cause }),
      );
      auditCall(guard, method, identity, admission, access, started, failure.code ?? 2, failure.details);
      if (!call.destroyed) call.emit("error", failure);
    },
  };
}

export function createMigrateHandler(
  deps: MigrationDeps,
): handleServerStreamingCall<MigrateRequest, MigrateResponse> {
  return (call) => {
    const rpc = beginCall("Migrate", call, deps);
    const run = async () => {
      const req = call.request;
      assertDecoded(req);
      const checkpointId = req.checkpointId || `migration-${req.pid}-${Date.now()}`;
      const dumpOptions = CriuOptions.fromPartial({ ...req.dumpOptions, pid: req.pid });
      const { identity, context } = await rpc.admit(["Migrate", "Dump"], {
        checkpoints: [{ id: checkpointId, access: "write" }],
        dumpRoot: req.pid,
        options: dumpOptions,
        operation: true,
        requestBytes: wireBytes(req),
      });
      await migrateFromSource(
        {
          pid: req.pid,
          target: req.target,
          mode: modeFromApi(req.mode),
          dumpOptions: req.dumpOptions,
          restoreOptions: req.restoreOptions,
          checkpointId,
        },
        {
          store: deps.store,
          dump: deps.operations.dump,
          featureCheck: deps.operations.featureCheck,
          host: kernelLimits,
          checkTarget: (target) => checkPushTarget(deps.targets, target),
          connect: (target) => connectTarget(deps.targets, target, identity),
        },
        context,
        (event) => writeWithDrain(call, migrateResponseOf(event)),
      );
    };
    run().then(
      () => rpc.end(),
      (err: unknown) => rpc.end(rpc.signal.aborted ? rpc.signal.reason : err),
    );
  };
}

export function createAcceptMigrationHandler(
  deps: MigrationDeps,
): handleBidiStreamingCall<AcceptMigrationRequest, AcceptMigrationResponse> {
  return (call) => {
    const rpc = beginCall("AcceptMigration", call, deps);
    const requests = new StreamQueue(call, (raw) => {
      assertDecoded(raw as AcceptMigrationRequest);
      return toTargetOf(raw as AcceptMigrationRequest);
    });
    // A source that goes away ends the migration here: what was restored is killed.
    rpc.signal.addEventListener("abort", () => requests.fail(rpc.signal.reason));
    const run = () =>
      acceptMigration(
        { next: () => requests.next(), send: (message) => writeWithDrain(call, acceptResponseOf(message)) },
        {
          store: deps.store,
          restore: deps.operations.restore,
          admit: async (header) =>
            (
              await rpc.admit(["AcceptMigration", "Restore"], {
                checkpoints: [{ id: header.checkpointId, access: "write" }],
                options: header.restoreOptions,
                operation: true,
              })
            ).context,
        },
      );
    run().then(
      () => rpc.end(),
      (err: unknown) => rpc.end(rpc.signal.aborted ? rpc.signal.reason : err),
    );
  };
}

/** Migrate and AcceptMigration, for the composition root. */
export function createMigrationService(deps: MigrationDeps) {
  return { migrate: createMigrateHandler(deps), acceptMigration: createAcceptMigrationHandler(deps) };
}
