// The transfer calls of CriuService, built from their dependencies (for the composition root).

import { FileHashes } from "../domain/checkpointTransfer/fileHashes.js";
import { createPushHandler, type PushDeps } from "./pushHandler.js";
import { createExportHandler, createImportHandler } from "./transferHandlers.js";

/** What the transfer calls need, but the file hashes, which this service keeps for all of them. */
export type TransferServiceDeps = Omit<PushDeps, "hashes">;

export function createTransferService(deps: TransferServiceDeps) {
  const shared = { ...deps, hashes: new FileHashes() };
  return {
    exportCheckpoint: createExportHandler(shared),
    importCheckpoint: createImportHandler(shared),
    pushCheckpoint: createPushHandler(shared),
  };
}
