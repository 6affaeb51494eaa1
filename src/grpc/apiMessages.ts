// The domain's results as the API's messages, and the API's enums as the domain's: every
// translation between the two in one place.
import {
  OperationKind as ApiKind,
  type Checkpoint,
  CheckpointKind,
  CheckpointLogKind,
  CheckpointState,
  type CriuOptions,
  type DumpResponse,
  Durability,
  type Event,
  type ExportImagesResponse,
  type NotifyCallback,
  type PageServer,
  type PreDumpResponse,
  type VersionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import type {
  CallbackQuestion,
  CriuVersion,
  DumpInput,
  DumpResult,
  LogKind,
  PageServerInfo,
} from "../domain/criuOperations.js";
import { invalidArgument } from "../domain/errors.js";
import type { GatewayEvent, OperationKind } from "../domain/eventBus.js";
import type {
  CheckpointInfo,
  Durability as DomainDurability,
  CheckpointKind as DomainKind,
  ImageFileData,
} from "../domain/imageStore.js";
import { statusCodeOf } from "./errorStatus.js";

const CHECKPOINT_KIND_TO_API: Record<DomainKind, CheckpointKind> = {
  dump: CheckpointKind.CHECKPOINT_KIND_DUMP,
  "pre-dump": CheckpointKind.CHECKPOINT_KIND_PRE_DUMP,
  cpuinfo: CheckpointKind.CHECKPOINT_KIND_CPUINFO,
  pages: CheckpointKind.CHECKPOINT_KIND_PAGES,
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

/** The log a GetCheckpointLog request names; undefined for a value the API does not define. */
export const LOG_KIND_FROM_API: Partial<Record<CheckpointLogKind, LogKind>> = {
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_UNSPECIFIED]: "creation",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_DUMP]: "dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_RESTORE]: "restore",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_PRE_DUMP]: "pre-dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_DUMP]: "cpuinfo-dump",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_CHECK]: "cpuinfo-check",
  [CheckpointLogKind.CHECKPOINT_LOG_KIND_PAGE_SERVER]: "page-server",
};

/** The operation kinds a SubscribeRequest names; undefined for a value the API does not define. */
export const OPERATION_KIND_FROM_API: Partial<Record<ApiKind, OperationKind>> = {
  [ApiKind.OPERATION_KIND_DUMP]: "dump",
  [ApiKind.OPERATION_KIND_RESTORE]: "restore",
  [ApiKind.OPERATION_KIND_CHECK]: "check",
  [ApiKind.OPERATION_KIND_FEATURE_CHECK]: "feature-check",
  [ApiKind.OPERATION_KIND_VERSION]: "version",
  [ApiKind.OPERATION_KIND_PRE_DUMP]: "pre-dump",
  [ApiKind.OPERATION_KIND_WAIT_PID]: "wait-pid",
  [ApiKind.OPERATION_KIND_CPUINFO_DUMP]: "cpuinfo-dump",
  [ApiKind.OPERATION_KIND_CPUINFO_CHECK]: "cpuinfo-check",
  [ApiKind.OPERATION_KIND_PAGE_SERVER]: "page-server",
  [ApiKind.OPERATION_KIND_ITERATIVE_DUMP]: "iterative-dump",
  [ApiKind.OPERATION_KIND_EXPORT]: "export",
  [ApiKind.OPERATION_KIND_IMPORT]: "import",
  [ApiKind.OPERATION_KIND_PUSH]: "push",
};

const OPERATION_KIND_TO_API: Record<OperationKind, ApiKind> = {
  dump: ApiKind.OPERATION_KIND_DUMP,
  restore: ApiKind.OPERATION_KIND_RESTORE,
  check: ApiKind.OPERATION_KIND_CHECK,
  "feature-check": ApiKind.OPERATION_KIND_FEATURE_CHECK,
  version: ApiKind.OPERATION_KIND_VERSION,
  "pre-dump": ApiKind.OPERATION_KIND_PRE_DUMP,
  "wait-pid": ApiKind.OPERATION_KIND_WAIT_PID,
  "cpuinfo-dump": ApiKind.OPERATION_KIND_CPUINFO_DUMP,
  "cpuinfo-check": ApiKind.OPERATION_KIND_CPUINFO_CHECK,
  "page-server": ApiKind.OPERATION_KIND_PAGE_SERVER,
  "iterative-dump": ApiKind.OPERATION_KIND_ITERATIVE_DUMP,
  export: ApiKind.OPERATION_KIND_EXPORT,
  import: ApiKind.OPERATION_KIND_IMPORT,
  push: ApiKind.OPERATION_KIND_PUSH,
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
    kind: CHECKPOINT_KIND_TO_API[info.kind],
    dumpStatistics: info.dumpStatistics,
    pagesSentTo: info.pagesSentTo ?? "",
    state:
      info.state === "unconfirmed"
        ? CheckpointState.CHECKPOINT_STATE_UNCONFIRMED
        : CheckpointState.CHECKPOINT_STATE_COMPLETE,
    durability: DURABILITY_TO_API[info.durability],
  };
}

export function toPageServer(info: PageServerInfo): PageServer {
  return {
    checkpointId: info.checkpointId,
    pid: info.pid,
    address: info.address,
    port: info.port,
    startTime: info.startTime,
  };
}

/** A dump's or pre-dump's request fields as the domain takes them (an empty parent is none). */
export function toDumpInput(req: {
  checkpointId: string;
  parentCheckpointId: string;
  options?: CriuOptions | undefined;
  durability?: Durability | undefined;
}): DumpInput {
  return {
    checkpointId: req.checkpointId,
    parentCheckpointId: req.parentCheckpointId || undefined,
    options: req.options,
    durability: fromDurability(req.durability),
  };
}

export function toVersionResponse(v: CriuVersion, gatewayVersion: string): VersionResponse {
  return {
    majorNumber: v.majorNumber,
    minorNumber: v.minorNumber,
    sublevel: v.sublevel,
    extra: v.extra,
    gitid: v.gitid,
    name: v.name,
    gatewayVersion,
  };
}

export function toDumpResponse(result: DumpResult): DumpResponse {
  return {
    checkpoint: toCheckpoint(result.checkpoint),
    restored: result.restored,
    statistics: result.statistics,
  };
}

export function toPreDumpResponse(result: DumpResult): PreDumpResponse {
  return { checkpoint: toCheckpoint(result.checkpoint), statistics: result.statistics };
}

/** Exported images: the bytes are handed on as they are, viewed as a Buffer without a copy. */
export function toExportImagesResponse(exported: {
  checkpoint: CheckpointInfo;
  files: readonly ImageFileData[];
}): ExportImagesResponse {
  return {
    checkpoint: toCheckpoint(exported.checkpoint),
    files: exported.files.map((f) => ({
      name: f.name,
      data: Buffer.isBuffer(f.data)
        ? f.data
        : Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength),
    })),
  };
}

export function toNotifyCallback(q: CallbackQuestion): NotifyCallback {
  return {
    operationId: q.operationId,
    sequence: q.sequence,
    script: q.script,
    pid: q.pid,
    fdReceived: q.fdReceived,
    timeoutMs: q.timeoutMs,
  };
}

export function toApiEvent(e: GatewayEvent): Event {
  const base: Event = { operationId: e.operationId, time: e.time };
  const p = e.payload;
  switch (p.type) {
    case "started":
      return {
        ...base,
        started: {
          kind: OPERATION_KIND_TO_API[p.kind],
          caller: p.caller,
          pid: p.pid,
          checkpointId: p.checkpointId,
          interactive: p.interactive,
        },
      };
    case "callback":
      return { ...base, callback: { sequence: p.sequence, script: p.script, pid: p.pid } };
    case "callback-answered":
      return {
        ...base,
        callbackAnswered: {
          sequence: p.sequence,
          script: p.script,
          success: p.success,
          answeredBy: p.answeredBy,
        },
      };
    case "finished":
      return {
        ...base,
        finished: {
          code: p.code === "OK" ? 0 : statusCodeOf(p.code),
          message: p.message,
          durationMs: p.durationMs,
          restoredPid: p.restoredPid,
        },
      };
    case "progress":
      return { ...base, transferProgress: { bytesDone: p.bytesDone, bytesTotal: p.bytesTotal } };
  }
}
