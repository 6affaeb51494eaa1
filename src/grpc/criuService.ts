// criu.gateway.v1.CriuService: translates between the API's messages and the domain's operations.
import {
  type Checkpoint,
  CheckpointKind,
  CheckpointLogKind,
  type CriuOptions,
  type CriuServiceServer,
  type DumpRequest,
  type DumpResponse,
  Durability,
  type GetCheckpointLogRequest,
  type PageServer,
  type PreDumpRequest,
  type PreDumpResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations, DumpInput, LogKind, PageServerInfo } from "../domain/criuOperations.js";
import { invalidArgument } from "../domain/errors.js";
import type { HostFinding } from "../domain/hostFindings.js";
import {
  type CheckpointInfo,
  type Durability as DomainDurability,
  type CheckpointKind as DomainKind,
  ImageStore,
} from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import type { AccessRequest, Gatekeeper } from "./gatekeeper.js";
import { type GuardDeps, handleUnary, type UnaryHandler } from "./handleUnary.js";
import { hostFindingMessage } from "./hostFindingMessage.js";

export interface CriuServiceDeps {
  operations: CriuOperations;
  store: ImageStore;
  gatewayVersion: string;
  logger: Logger;
  gatekeeper: Gatekeeper;
  /** The host doctor's findings, for Check (hostDoctor.ts). */
  hostFindings: () => Promise<HostFinding[]>;
}

const KIND_TO_API: Record<DomainKind, CheckpointKind> = {
  dump: CheckpointKind.CHECKPOINT_KIND_DUMP,
  "pre-dump": CheckpointKind.CHECKPOINT_KIND_PRE_DUMP,
  cpuinfo: CheckpointKind.CHECKPOINT_KIND_CPUINFO,
  pages: CheckpointKind.CHECKPOINT_KIND_PAGES,
};

const LOG_KIND_FROM_API: Partial<Record<CheckpointLogKind, LogKind>> = {
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_UNSPECIFIED]: "creation",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_DUMP]: "dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_RESTORE]: "restore",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_PRE_DUMP]: "pre-dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_DUMP]: "cpuinfo-dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_CHECK]: "cpuinfo-check",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_PAGE_SERVER]: "page-server",
};

const DURABILITY_TO_API: Record<DomainDurability, Durability> = {
  fsync: Durability.DURABILITY_FSYNC,
  none: Durability.DURABILITY_NONE,
};

/** The API's durability as the store's; INVALID_ARGUMENT for a value this gateway does not know. */
export function fromDurability(durability: Durability | undefined): DomainDurability {
  switch (durability) {
    case undefined:
    case Durability.DURABILITY_UNSPECIFIED:
    case Durability.DURABILITY_FSYNC:
      return "fsync";
    case Durability.DURABILITY_NONE:
      return "none";
    default:
      throw invalidArgument(`durability ${durability} is not a Durability: use FSYNC (1) or NONE (2)`);
  }
}

/** A DumpRequest or PreDumpRequest (also a Session's) as the domain's DumpInput. */
export function toDumpInput(req: DumpRequest | PreDumpRequest): DumpInput {
  return {
    checkpointId: req.checkpointId,
    parentCheckpointId: req.parentCheckpointId || undefined,
    options: req.options,
    durability: fromDurability(req.durability),
  };
}

export function toCheckpoint(info: CheckpointInfo): Checkpoint {
  return {
    checkpointId: info.id,
    createTime: info.createTime,
    sizeBytes: info.sizeBytes,
    rootPid: info.rootPid,
    parentCheckpointId: info.parentId ?? "",
    criuVersion: info.criuVersion,
    leaveRunning: info.leaveRunning,
    kind: KIND_TO_API[info.kind],
    dumpStatistics: info.dumpStatistics,
    pagesSentTo: info.pagesSentTo ?? "",
    durability: DURABILITY_TO_API[info.durability],
  };
}

function toPageServer(info: PageServerInfo): PageServer {
  return {
    checkpointId: info.checkpointId,
    pid: info.pid,
    address: info.address,
    port: info.port,
    startTime: info.startTime,
  };
}

export function createCriuService(deps: CriuServiceDeps): Omit<CriuServiceServer, "session" | "subscribe"> {
  const { operations, store } = deps;
  const guard: GuardDeps = { logger: deps.logger, gatekeeper: deps.gatekeeper };
  const unary = <Req, Res>(
    method: string,
    access: (req: Req) => AccessRequest,
    handler: UnaryHandler<Req, Res>,
  ) => handleUnary(method, guard, access, handler);
  const worker = () => ({ operation: true });
  const read = (id: string): AccessRequest => ({ checkpoints: id ? [{ id, access: "read" }] : [] });
  return {
    version: unary("Version", worker, async (_req, { operation }) => {
      const v = await operations.version(operation);
      return {
        majorNumber: v.majorNumber,
        minorNumber: v.minorNumber,
        sublevel: v.sublevel,
        extra: v.extra,
        gitid: v.gitid,
        name: v.name,
        gatewayVersion: deps.gatewayVersion,
      };
    }),
    check: unary(
      "Check",
      (req) => ({ options: req.options, operation: true }),
      async (req, { operation }) => {
        await operations.check(req.options, operation);
        return { findings: (await deps.hostFindings()).map(hostFindingMessage) };
      },
    ),
    featureCheck: unary("FeatureCheck", worker, async (_req, { operation }) =>
      operations.featureCheck(operation),
    ),
    dump: unary<DumpRequest, DumpResponse>("Dump", dumpAccess, async (req, { operation }) => {
      const result = await operations.dump(toDumpInput(req), operation);
      return {
        checkpoint: toCheckpoint(result.checkpoint),
        restored: result.restored,
        statistics: result.statistics,
      };
    }),
    preDump: unary<PreDumpRequest, PreDumpResponse>("PreDump", dumpAccess, async (req, { operation }) => {
      const result = await operations.preDump(toDumpInput(req), operation);
      return { checkpoint: toCheckpoint(result.checkpoint), statistics: result.statistics };
    }),
    getCheckpointLog: unary(
      "GetCheckpointLog",
      (req: GetCheckpointLogRequest) => read(req.checkpointId),
      async (req) => {
        const kind = LOG_KIND_FROM_API[req.kind];
        if (kind === undefined) throw invalidArgument(`kind ${req.kind} is not a known log kind`);
        const log = await operations.checkpointLog(req.checkpointId, kind);
        return { text: log.text, truncated: log.truncated, sizeBytes: log.sizeBytes };
      },
    ),
    waitPid: unary(
      "WaitPid",
      (req) => ({ pid: req.pid, operation: true }),
      async (req, { operation }) => {
        const outcome = await operations.waitPid(req.pid, operation);
        return { exitCode: outcome.exitCode, signal: outcome.signal, rawStatus: outcome.rawStatus };
      },
    ),
    cpuinfoDump: unary(
      "CpuinfoDump",
      (req) => ({
        checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "write" }] : [],
        options: req.options,
        operation: true,
      }),
      async (req, { operation }) => ({
        checkpoint: toCheckpoint(
          await operations.cpuinfoDump({ checkpointId: req.checkpointId, options: req.options }, operation),
        ),
      }),
    ),
    cpuinfoCheck: unary(
      "CpuinfoCheck",
      (req) => ({ ...read(req.checkpointId), options: req.options, operation: true }),
      async (req, { operation }) => {
        await operations.cpuinfoCheck({ checkpointId: req.checkpointId, options: req.options }, operation);
        return {};
      },
    ),
    restore: unary("Restore", restoreAccess, async (req, { operation }) =>
      operations.restore({ checkpointId: req.checkpointId, options: req.options }, operation),
    ),
    listCheckpoints: unary(
      "ListCheckpoints",
      () => ({}),
      async (_req, { admission }) => ({
        // Checkpoints outside the caller's namespaces are not shown at all.
        checkpoints: (await store.list()).filter((c) => admission.canRead(c.id)).map(toCheckpoint),
      }),
    ),
    getCheckpoint: unary(
      "GetCheckpoint",
      (req) => read(req.checkpointId),
      async (req) => ({
        checkpoint: toCheckpoint(await store.get(req.checkpointId)),
      }),
    ),
    deleteCheckpoint: unary(
      "DeleteCheckpoint",
      (req) => ({ checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "delete" }] : [] }),
      async (req, { admission }) => {
        ImageStore.validateId(req.checkpointId);
        // A refusal names only the children the caller may read: others' ids are not its to learn.
        await store.delete(req.checkpointId, admission.canRead);
        return {};
      },
    ),
    startPageServer: unary(
      "StartPageServer",
      (req) => ({
        checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "write" }] : [],
        options: req.options,
        operation: true,
      }),
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
    stopPageServer: unary(
      "StopPageServer",
      (req) => ({ checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "write" }] : [] }),
      async (req) => {
        await operations.stopPageServer(req.checkpointId);
        return {};
      },
    ),
    listPageServers: unary(
      "ListPageServers",
      () => ({}),
      async (_req, { admission }) => ({
        pageServers: operations
          .listPageServers()
          .filter((p) => admission.canRead(p.checkpointId))
          .map(toPageServer),
      }),
    ),
    exportImages: unary(
      "ExportImages",
      (req) => read(req.checkpointId),
      async (req) => {
        const exported = await operations.exportImages(req.checkpointId);
        return { checkpoint: toCheckpoint(exported.checkpoint), files: exported.files };
      },
    ),
    importImages: unary(
      "ImportImages",
      (req) => ({ checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "write" }] : [] }),
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

/**
 * A dump writes its checkpoint, reads its parent (whose lineage the gatekeeper checks too), and
 * covers the tree under options.pid.
 */
export function dumpAccess(req: {
  checkpointId: string;
  parentCheckpointId: string;
  options?: CriuOptions | undefined;
}): AccessRequest {
  const checkpoints: { id: string; access: "read" | "write" }[] = [];
  if (req.checkpointId) checkpoints.push({ id: req.checkpointId, access: "write" });
  if (req.parentCheckpointId) checkpoints.push({ id: req.parentCheckpointId, access: "read" });
  return {
    checkpoints,
    dumpRoot: req.options?.pid,
    parent: req.parentCheckpointId || undefined,
    options: req.options,
    operation: true,
  };
}

/** A restore reads its checkpoint and re-creates the processes recorded with it. */
export function restoreAccess(req: {
  checkpointId: string;
  options?: CriuOptions | undefined;
}): AccessRequest {
  return {
    checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "read" }] : [],
    restoreOf: req.checkpointId || undefined,
    options: req.options,
    operation: true,
  };
}
