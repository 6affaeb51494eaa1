// criu.gateway.v1.CriuService: translates between the API's messages and the domain's operations.
import {
  type Checkpoint,
  CheckpointKind,
  CheckpointLogKind,
  type CriuServiceServer,
  type GetCheckpointLogRequest,
  type PageServer,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations, LogKind, PageServerInfo } from "../domain/criuOperations.js";
import { invalidArgument } from "../domain/errors.js";
import { type CheckpointInfo, type CheckpointKind as DomainKind, ImageStore } from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import { handleUnary } from "./handleUnary.js";

export interface CriuServiceDeps {
  operations: CriuOperations;
  store: ImageStore;
  gatewayVersion: string;
  logger: Logger;
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
  const { operations, store, logger } = deps;
  return {
    version: handleUnary("Version", logger, async (_req, { signal, peer }) => {
      const v = await operations.version({ caller: peer, signal });
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
    check: handleUnary("Check", logger, async (req, { signal, peer }) => {
      await operations.check(req.options, { caller: peer, signal });
      return {};
    }),
    featureCheck: handleUnary("FeatureCheck", logger, async (_req, { signal, peer }) =>
      operations.featureCheck({ caller: peer, signal }),
    ),
    dump: handleUnary("Dump", logger, async (req, { signal, peer }) => {
      const result = await operations.dump(
        {
          checkpointId: req.checkpointId,
          parentCheckpointId: req.parentCheckpointId || undefined,
          options: req.options,
        },
        { caller: peer, signal },
      );
      return {
        checkpoint: toCheckpoint(result.checkpoint),
        restored: result.restored,
        statistics: result.statistics,
      };
    }),
    preDump: handleUnary("PreDump", logger, async (req, { signal, peer }) => {
      const result = await operations.preDump(
        {
          checkpointId: req.checkpointId,
          parentCheckpointId: req.parentCheckpointId || undefined,
          options: req.options,
        },
        { caller: peer, signal },
      );
      return { checkpoint: toCheckpoint(result.checkpoint), statistics: result.statistics };
    }),
    getCheckpointLog: handleUnary("GetCheckpointLog", logger, async (req: GetCheckpointLogRequest) => {
      const kind = LOG_KIND_FROM_API[req.kind];
      if (kind === undefined) throw invalidArgument(`kind ${req.kind} is not a known log kind`);
      const log = await operations.checkpointLog(req.checkpointId, kind);
      return { text: log.text, truncated: log.truncated, sizeBytes: log.sizeBytes };
    }),
    waitPid: handleUnary("WaitPid", logger, async (req, { signal, peer }) => {
      const outcome = await operations.waitPid(req.pid, { caller: peer, signal });
      return { exitCode: outcome.exitCode, signal: outcome.signal, rawStatus: outcome.rawStatus };
    }),
    cpuinfoDump: handleUnary("CpuinfoDump", logger, async (req, { signal, peer }) => ({
      checkpoint: toCheckpoint(
        await operations.cpuinfoDump(
          { checkpointId: req.checkpointId, options: req.options },
          { caller: peer, signal },
        ),
      ),
    })),
    cpuinfoCheck: handleUnary("CpuinfoCheck", logger, async (req, { signal, peer }) => {
      await operations.cpuinfoCheck(
        { checkpointId: req.checkpointId, options: req.options },
        { caller: peer, signal },
      );
      return {};
    }),
    restore: handleUnary("Restore", logger, async (req, { signal, peer }) =>
      operations.restore({ checkpointId: req.checkpointId, options: req.options }, { caller: peer, signal }),
    ),
    listCheckpoints: handleUnary("ListCheckpoints", logger, async () => ({
      checkpoints: (await store.list()).map(toCheckpoint),
    })),
    getCheckpoint: handleUnary("GetCheckpoint", logger, async (req) => ({
      checkpoint: toCheckpoint(await store.get(req.checkpointId)),
    })),
    deleteCheckpoint: handleUnary("DeleteCheckpoint", logger, async (req) => {
      ImageStore.validateId(req.checkpointId);
      await store.delete(req.checkpointId);
      return {};
    }),
    startPageServer: handleUnary("StartPageServer", logger, async (req, { signal, peer }) => ({
      pageServer: toPageServer(
        await operations.startPageServer(
          { checkpointId: req.checkpointId, address: req.address, port: req.port, options: req.options },
          { caller: peer, signal },
        ),
      ),
    })),
    stopPageServer: handleUnary("StopPageServer", logger, async (req) => {
      await operations.stopPageServer(req.checkpointId);
      return {};
    }),
    listPageServers: handleUnary("ListPageServers", logger, async () => ({
      pageServers: operations.listPageServers().map(toPageServer),
    })),
    exportImages: handleUnary("ExportImages", logger, async (req) => {
      const exported = await operations.exportImages(req.checkpointId);
      return { checkpoint: toCheckpoint(exported.checkpoint), files: exported.files };
    }),
    importImages: handleUnary("ImportImages", logger, async (req) => ({
      checkpoint: toCheckpoint(await operations.importImages(req.checkpointId, req.files, req.rootPid)),
    })),
  };
}
