// Between the migration's domain messages and the API's: one table per direction, nothing else.
import {
  type AcceptMigrationRequest,
  type AcceptMigrationResponse,
  MigrationMode as ApiMode,
  type MigrateResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { invalidArgument } from "../domain/errors.js";
import type { MigrationEvent } from "../domain/migration/migrateSource.js";
import { DEFAULT_MIGRATION_MODE, type MigrationMode } from "../domain/migration/migrationMode.js";
import type { FromTarget, ToTarget } from "../domain/migration/targetLink.js";

const MODE_FROM_API: Record<ApiMode, MigrationMode | undefined> = {
  [ApiMode.MIGRATION_MODE_UNSPECIFIED]: DEFAULT_MIGRATION_MODE,
  [ApiMode.MIGRATION_MODE_STOP_AND_COPY]: "stop-and-copy",
  [ApiMode.MIGRATION_MODE_POST_COPY]: "post-copy",
  [ApiMode.MIGRATION_MODE_PRE_COPY]: "pre-copy",
  [ApiMode.UNRECOGNIZED]: undefined,
};

const MODE_TO_API: Record<MigrationMode, ApiMode> = {
  "stop-and-copy": ApiMode.MIGRATION_MODE_STOP_AND_COPY,
  "post-copy": ApiMode.MIGRATION_MODE_POST_COPY,
  "pre-copy": ApiMode.MIGRATION_MODE_PRE_COPY,
};

export function modeFromApi(mode: ApiMode): MigrationMode {
  const known = MODE_FROM_API[mode];
  if (!known) throw invalidArgument(`mode: ${mode} is not a MigrationMode`);
  return known;
}

export function migrateResponseOf(event: MigrationEvent): MigrateResponse {
  switch (event.kind) {
    case "frozen":
      return { frozen: { pids: event.pids, dumpStatistics: event.dumpStatistics } };
    case "images-sent":
      return { imagesSent: { bytes: event.bytes, files: event.files } };
    case "restored":
      return { restored: { targetPid: event.targetPid, restoreStatistics: event.restoreStatistics } };
    case "memory":
      return { memory: { pagesMoved: event.pagesMoved, pagesTotal: event.pagesTotal } };
    case "source-released":
      return { sourceReleased: {} };
    case "process-lost":
      return { processLost: { reason: event.reason } };
    case "done":
      return {
        done: {
          targetPid: event.targetPid,
          statistics: { ...event.statistics, mode: MODE_TO_API[event.statistics.mode] },
        },
      };
  }
}

export function acceptRequestOf(message: ToTarget): AcceptMigrationRequest {
  switch (message.kind) {
    case "header":
      return { header: { ...message.header, mode: MODE_TO_API[message.header.mode] } };
    case "chunk":
      // The chunks are Buffers already (read from disk): no copy of up to 1 GiB of images.
      return { chunk: { ...message.chunk, data: asBuffer(message.chunk.data) } };
    case "images-end":
      return { imagesEnd: {} };
    case "commit":
      return { commit: {} };
    case "pages":
      return { pages: { data: asBuffer(message.data) } };
  }
}

export function toTargetOf(req: AcceptMigrationRequest): ToTarget {
  if (req.header) return { kind: "header", header: { ...req.header, mode: modeFromApi(req.header.mode) } };
  if (req.chunk) return { kind: "chunk", chunk: req.chunk };
  if (req.imagesEnd) return { kind: "images-end" };
  if (req.commit) return { kind: "commit" };
  if (req.pages) return { kind: "pages", data: req.pages.data };
  throw invalidArgument("AcceptMigration: a message with none of header, chunk, images_end, commit, pages");
}

export function acceptResponseOf(message: FromTarget): AcceptMigrationResponse {
  switch (message.kind) {
    case "restored":
      return { restored: { targetPid: message.targetPid, restoreStatistics: message.statistics } };
    case "running":
      return { running: { targetPid: message.targetPid } };
    case "pages":
      return { pages: { data: asBuffer(message.data) } };
  }
}

export function fromTargetOf(res: AcceptMigrationResponse): FromTarget {
  if (res.restored) {
    return {
      kind: "restored",
      targetPid: res.restored.targetPid,
      statistics: res.restored.restoreStatistics,
    };
  }
  if (res.running) return { kind: "running", targetPid: res.running.targetPid };
  if (res.pages) return { kind: "pages", data: res.pages.data };
  throw invalidArgument("the target answered a message with none of restored, running, pages");
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
