// The transfer calls of CriuService, built from their dependencies (for the composition root).

import type { Gatekeeper } from "../auth/gatekeeper.js";
import type { GatewayConfig } from "../config.js";
import { FileHashes } from "../domain/checkpointTransfer/fileHashes.js";
import type { EventBus } from "../domain/eventBus.js";
import type { ImageStore } from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import type { TransferStats } from "./boundedWriter.js";
import { createPushHandler } from "./pushHandler.js";
import { createExportHandler, createImportHandler } from "./transferHandlers.js";
import type { UnixPeers } from "./unixListener.js";

export interface TransferServiceDeps {
  store: ImageStore;
  events: EventBus;
  logger: Logger;
  gatekeeper: Gatekeeper;
  unixPeers: UnixPeers;
  stats: TransferStats;
  config: Pick<GatewayConfig, "pushTargets" | "pushTls">;
}

export function createTransferService(deps: TransferServiceDeps) {
  const shared = { ...deps, hashes: new FileHashes() };
  return {
    exportCheckpoint: createExportHandler(shared),
    importCheckpoint: createImportHandler(shared),
    pushCheckpoint: createPushHandler(shared),
  };
}
