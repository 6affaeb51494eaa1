// What a checkpoint holds besides CRIU's run: its logs, and its images moved out and in.

import { join } from "node:path";
import { asDiskFull } from "../diskFull.js";
import { invalidArgument } from "../errors.js";
import {
  type CheckpointInfo,
  CPUINFO_CHECK_LOG,
  CPUINFO_DUMP_LOG,
  DUMP_LOG,
  type Durability,
  type ImageFileData,
  ImageStore,
  type LogText,
  PAGE_SERVER_LOG,
  PRE_DUMP_LOG,
  RESTORE_LOG,
} from "../imageStore.js";
import { pathExists } from "./pathExists.js";

/** Which of CRIU's logs of a checkpoint; "creation" is the log of the operation that made it. */
export type LogKind =
  | "creation"
  | "dump"
  | "restore"
  | "pre-dump"
  | "cpuinfo-dump"
  | "cpuinfo-check"
  | "page-server";

const LOG_FILE: Record<Exclude<LogKind, "creation">, string> = {
  dump: DUMP_LOG,
  restore: RESTORE_LOG,
  "pre-dump": PRE_DUMP_LOG,
  "cpuinfo-dump": CPUINFO_DUMP_LOG,
  "cpuinfo-check": CPUINFO_CHECK_LOG,
  "page-server": PAGE_SERVER_LOG,
};

/**
 * The most of a log GetCheckpointLog returns, and of images ExportImages returns: just under
 * 4 MiB, so that the answer fits the 4 MiB message limit gRPC clients apply by default.
 */
export const LOG_MAX_BYTES = 4 * 1024 * 1024 - 16 * 1024;

export function createCheckpointFiles(store: ImageStore) {
  /** Whether a dump checkpoint was completed from a page server's (its page-server.log is there). */
  const pageServerMade = (checkpointId: string) =>
    pathExists(join(store.root, checkpointId, PAGE_SERVER_LOG));

  return {
    /** CRIU's log of a checkpoint; NOT_FOUND when there is no such checkpoint or log. */
    async checkpointLog(checkpointId: string, kind: LogKind): Promise<LogText> {
      ImageStore.validateId(checkpointId);
      let file: string;
      if (kind === "creation") {
        const info = await store.get(checkpointId);
        file = {
          dump:
            info.pagesSentTo === undefined && (await pageServerMade(checkpointId))
              ? PAGE_SERVER_LOG
              : DUMP_LOG,
          "pre-dump": PRE_DUMP_LOG,
          cpuinfo: CPUINFO_DUMP_LOG,
          pages: PAGE_SERVER_LOG,
        }[info.kind];
      } else {
        file = LOG_FILE[kind];
      }
      return store.readLog(checkpointId, file, LOG_MAX_BYTES);
    },

    /** A checkpoint's image files, as many as fit in one message. */
    async exportImages(
      checkpointId: string,
    ): Promise<{ checkpoint: CheckpointInfo; files: ImageFileData[] }> {
      ImageStore.validateId(checkpointId);
      const checkpoint = await store.get(checkpointId);
      return { checkpoint, files: await store.exportImages(checkpointId, LOG_MAX_BYTES) };
    },

    async importImages(
      checkpointId: string,
      files: readonly ImageFileData[],
      rootPid: number,
      durability: Durability = "fsync",
    ): Promise<CheckpointInfo> {
      ImageStore.validateId(checkpointId);
      if (files.length === 0) throw invalidArgument("files is empty: nothing to import");
      try {
        return await store.importImages(checkpointId, files, rootPid, durability);
      } catch (err) {
        throw await asDiskFull(err, store.root);
      }
    },
  };
}
