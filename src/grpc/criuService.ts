// criu.gateway.v1.CriuService: translates between the API's messages and the domain's operations.
import type { Checkpoint, CriuServiceServer } from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import { type CheckpointInfo, ImageStore } from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import { handleUnary } from "./handleUnary.js";

export interface CriuServiceDeps {
  operations: CriuOperations;
  store: ImageStore;
  gatewayVersion: string;
  logger: Logger;
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
      return { checkpoint: toCheckpoint(result.checkpoint), restored: result.restored };
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
  };
}
