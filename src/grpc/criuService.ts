// criu.gateway.v1.CriuService: each RPC as what it touches (for admission) and what it does, in the
// domain's terms; the call pipeline does everything around that.
import {
  type CriuServiceServer,
  type GetCheckpointLogRequest,
  SessionRequest,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { AccessRequest } from "../auth/admission.js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import { invalidArgument } from "../domain/errors.js";
import type { EventBus } from "../domain/eventBus.js";
import type { HostFinding } from "../domain/hostFindings.js";
import { ImageStore } from "../domain/imageStore.js";
import {
  fromDurability,
  LOG_KIND_FROM_API,
  toCheckpoint,
  toDumpInput,
  toDumpResponse,
  toExportImagesResponse,
  toPageServer,
  toPreDumpResponse,
  toVersionResponse,
} from "./apiMessages.js";
import type { CallPipeline } from "./callPipeline.js";
import { hostFindingMessage } from "./hostFindingMessage.js";
import { dumpAccess, readAccess, restoreAccess, sessionAccess, writeAccess } from "./methodAccess.js";
import { createSession } from "./session.js";
import { createSubscribe } from "./subscribe.js";

export interface CriuServiceDeps {
  pipeline: CallPipeline;
  operations: CriuOperations;
  store: ImageStore;
  events: EventBus;
  gatekeeper: Gatekeeper;
  gatewayVersion: string;
  /** Default and maximum time a Session's callback waits for the caller's answer. */
  callbackTimeoutMs: number;
  maxCallbackTimeoutMs: number;
  maxSubscribers: number;
  /** The host doctor's findings, for Check (hostDoctor.ts). */
  hostFindings: () => Promise<HostFinding[]>;
  /** ExportCheckpoint, ImportCheckpoint and PushCheckpoint (transferService.ts). */
  transfers: Pick<CriuServiceServer, "exportCheckpoint" | "importCheckpoint" | "pushCheckpoint">;
  /** Migrate and AcceptMigration (migrationHandlers.ts). */
  migrations: Pick<CriuServiceServer, "migrate" | "acceptMigration">;
}

export function createCriuService(deps: CriuServiceDeps): CriuServiceServer {
  const { pipeline } = deps;
  return {
    ...operationRpcs(deps),
    ...checkpointRpcs(deps),
    ...pageServerRpcs(deps),
    session: pipeline.bidiStreaming(
      "Session",
      sessionAccess,
      createSession(deps),
      SessionRequest.fromPartial({}),
    ),
    subscribe: pipeline.serverStreaming("Subscribe", () => judged({}), createSubscribe(deps)),
    ...deps.transfers,
    ...deps.migrations,
  };
}

type Rpcs<K extends keyof CriuServiceServer> = Pick<CriuServiceServer, K>;

const judged = (access: AccessRequest) => ({ access });

/** A call that runs a CRIU worker and touches no checkpoint: counted against the limits. */
const worker = () => judged({ operation: true });

/** The RPCs that run a CRIU request, and the one that reads the log CRIU wrote. */
function operationRpcs(
  deps: CriuServiceDeps,
): Rpcs<
  | "version"
  | "check"
  | "featureCheck"
  | "dump"
  | "preDump"
  | "getCheckpointLog"
  | "waitPid"
  | "cpuinfoDump"
  | "cpuinfoCheck"
  | "restore"
> {
  const { operations, pipeline } = deps;
  return {
    version: pipeline.unary("Version", worker, async (_req, { operation }) =>
      toVersionResponse(await operations.version(operation), deps.gatewayVersion),
    ),
    check: pipeline.unary(
      "Check",
      (req) => judged({ options: req.options, operation: true }),
      async (req, { operation }) => {
        await operations.check(req.options, operation);
        return { findings: (await deps.hostFindings()).map(hostFindingMessage) };
      },
    ),
    featureCheck: pipeline.unary("FeatureCheck", worker, async (_req, { operation }) =>
      operations.featureCheck(operation),
    ),
    dump: pipeline.unary(
      "Dump",
      (req) => judged(dumpAccess(req)),
      async (req, { operation }) => toDumpResponse(await operations.dump(toDumpInput(req), operation)),
    ),
    preDump: pipeline.unary(
      "PreDump",
      (req) => judged(dumpAccess(req)),
      async (req, { operation }) => toPreDumpResponse(await operations.preDump(toDumpInput(req), operation)),
    ),
    getCheckpointLog: pipeline.unary(
      "GetCheckpointLog",
      (req: GetCheckpointLogRequest) => judged(readAccess(req.checkpointId)),
      async (req) => {
        const kind = LOG_KIND_FROM_API[req.kind];
        if (kind === undefined) throw invalidArgument(`kind ${req.kind} is not a known log kind`);
        const log = await operations.checkpointLog(req.checkpointId, kind);
        return { text: log.text, truncated: log.truncated, sizeBytes: log.sizeBytes };
      },
    ),
    waitPid: pipeline.unary(
      "WaitPid",
      (req) => judged({ pid: req.pid, operation: true }),
      async (req, { operation }) => {
        const outcome = await operations.waitPid(req.pid, operation);
        return { exitCode: outcome.exitCode, signal: outcome.signal, rawStatus: outcome.rawStatus };
      },
    ),
    cpuinfoDump: pipeline.unary(
      "CpuinfoDump",
      (req) => judged({ ...writeAccess(req.checkpointId), options: req.options, operation: true }),
      async (req, { operation }) => ({
        checkpoint: toCheckpoint(
          await operations.cpuinfoDump({ checkpointId: req.checkpointId, options: req.options }, operation),
        ),
      }),
    ),
    cpuinfoCheck: pipeline.unary(
      "CpuinfoCheck",
      (req) => judged({ ...readAccess(req.checkpointId), options: req.options, operation: true }),
      async (req, { operation }) => {
        await operations.cpuinfoCheck({ checkpointId: req.checkpointId, options: req.options }, operation);
        return {};
      },
    ),
    restore: pipeline.unary(
      "Restore",
      (req) => judged(restoreAccess(req)),
      async (req, { operation }) =>
        operations.restore({ checkpointId: req.checkpointId, options: req.options }, operation),
    ),
  };
}

/** The RPCs on the image store's checkpoints. */
function checkpointRpcs(
  deps: CriuServiceDeps,
): Rpcs<"listCheckpoints" | "getCheckpoint" | "deleteCheckpoint" | "exportImages" | "importImages"> {
  const { operations, store, pipeline } = deps;
  return {
    listCheckpoints: pipeline.unary(
      "ListCheckpoints",
      () => judged({}),
      async (_req, { admission }) => ({
        // Checkpoints outside the caller's namespaces are not shown at all.
        checkpoints: (await store.list()).filter((c) => admission.canRead(c.id)).map(toCheckpoint),
      }),
    ),
    getCheckpoint: pipeline.unary(
      "GetCheckpoint",
      (req) => judged(readAccess(req.checkpointId)),
      async (req) => ({ checkpoint: toCheckpoint(await store.get(req.checkpointId)) }),
    ),
    deleteCheckpoint: pipeline.unary(
      "DeleteCheckpoint",
      (req) => judged({ checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "delete" }] : [] }),
      async (req, { admission }) => {
        ImageStore.validateId(req.checkpointId);
        // A refusal names only the children the caller may read: others' ids are not its to learn.
        await store.delete(req.checkpointId, admission.canRead);
        return {};
      },
    ),
    exportImages: pipeline.unary(
      "ExportImages",
      (req) => judged(readAccess(req.checkpointId)),
      async (req) => toExportImagesResponse(await operations.exportImages(req.checkpointId)),
    ),
    importImages: pipeline.unary(
      "ImportImages",
      (req) => judged(writeAccess(req.checkpointId)),
      async (req) => ({
        checkpoint: toCheckpoint(
          await operations.importImages(
            req.checkpointId,
            req.files,
            req.rootPid,
            fromDurability(req.durability),
          ),
        ),
      }),
    ),
  };
}

/** The RPCs on page servers, which outlive the call that starts them. */
function pageServerRpcs(
  deps: CriuServiceDeps,
): Rpcs<"startPageServer" | "stopPageServer" | "listPageServers"> {
  const { operations, pipeline } = deps;
  return {
    startPageServer: pipeline.unary(
      "StartPageServer",
      (req) => judged({ ...writeAccess(req.checkpointId), options: req.options, operation: true }),
      async (req, { operation, keepSlot }) => {
        // A running page server is an operation: it holds the caller's slot until it ends.
        const release = keepSlot();
        try {
          const server = await operations.startPageServer(
            { checkpointId: req.checkpointId, address: req.address, port: req.port, options: req.options },
            { ...operation, onServerEnded: release },
          );
          return { pageServer: toPageServer(server) };
        } catch (err) {
          release();
          throw err;
        }
      },
    ),
    stopPageServer: pipeline.unary(
      "StopPageServer",
      (req) => judged(writeAccess(req.checkpointId)),
      async (req) => {
        await operations.stopPageServer(req.checkpointId);
        return {};
      },
    ),
    listPageServers: pipeline.unary(
      "ListPageServers",
      () => judged({}),
      async (_req, { admission }) => ({
        pageServers: operations
          .listPageServers()
          .filter((p) => admission.canRead(p.checkpointId))
          .map(toPageServer),
      }),
    ),
  };
}
