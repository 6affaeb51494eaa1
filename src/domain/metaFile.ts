// meta.json: what the gateway records with each checkpoint, beside CRIU's images.

import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { DumpStatistics } from "../../gen/criu/gateway/v1/gateway.js";
import { readNoFollow } from "./durableFiles.js";
import type { CheckpointInfo, CheckpointKind, CheckpointMeta, Durability } from "./imageStore.js";
import type { ProcessRecord } from "./processTree.js";

export const META_FILE = "meta.json";

export interface MetaFile {
  formatVersion: 1;
  createTime: string;
  rootPid: number;
  parentId?: string;
  criuVersion: string;
  leaveRunning: boolean;
  kind?: CheckpointKind;
  dumpStatistics?: DumpStatistics;
  processes?: ProcessRecord[];
  pagesSentTo?: string;
  importedImages?: true;
  durability?: Durability;
}

const KINDS: readonly CheckpointKind[] = ["dump", "pre-dump", "cpuinfo", "pages"];

/** The meta.json text for `meta`. */
export function metaFileText(meta: CheckpointMeta, importedImages: boolean): string {
  return metaText(metaFileOf(meta, importedImages));
}

export function metaText(file: MetaFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** What meta.json records for `meta`. */
export function metaFileOf(meta: CheckpointMeta, importedImages: boolean): MetaFile {
  return {
    formatVersion: 1,
    createTime: new Date().toISOString(),
    rootPid: meta.rootPid,
    criuVersion: meta.criuVersion,
    leaveRunning: meta.leaveRunning,
    kind: meta.kind ?? "dump",
    ...(meta.parentId === undefined ? {} : { parentId: meta.parentId }),
    ...(meta.dumpStatistics === undefined ? {} : { dumpStatistics: meta.dumpStatistics }),
    ...(meta.processes === undefined ? {} : { processes: meta.processes }),
    ...(meta.pagesSentTo === undefined ? {} : { pagesSentTo: meta.pagesSentTo }),
    // Imported by the caller's say (ImportCheckpoint), or passed down from an imported parent.
    ...(importedImages || meta.importedImages ? { importedImages: true as const } : {}),
    durability: meta.durability ?? "fsync",
  };
}

/** A checkpoint as its meta file and its files describe it. */
export function describeCheckpoint(
  id: string,
  meta: Partial<MetaFile>,
  files: { sizeBytes: number; mtime: Date; pageServerLog: boolean; unconfirmed: boolean },
): CheckpointInfo {
  const kind = meta.kind !== undefined && KINDS.includes(meta.kind) ? meta.kind : "dump";
  return {
    id,
    createTime: meta.createTime ? new Date(meta.createTime) : files.mtime,
    sizeBytes: files.sizeBytes,
    rootPid: meta.rootPid ?? 0,
    parentId: meta.parentId,
    criuVersion: meta.criuVersion ?? "",
    leaveRunning: meta.leaveRunning ?? false,
    kind,
    dumpStatistics: meta.dumpStatistics,
    processes: validProcesses(meta.processes),
    pagesSentTo: meta.pagesSentTo,
    // Imports made before the marker existed left a trace: a dump that a page server began.
    importedImages: meta.importedImages === true || (kind === "dump" && files.pageServerLog),
    state: files.unconfirmed ? "unconfirmed" : "complete",
    // Checkpoints written before the choice was recorded were flushed.
    durability: meta.durability === "none" ? "none" : "fsync",
  };
}

/** A directory's meta.json, never through a symlink; undefined when missing or unreadable. */
export async function readMeta(dir: string): Promise<Partial<MetaFile> | undefined> {
  try {
    const meta: unknown = JSON.parse(
      await fs.readFile(join(dir, META_FILE), { encoding: "utf8", flag: readNoFollow }),
    );
    return typeof meta === "object" && meta !== null ? (meta as Partial<MetaFile>) : undefined;
  } catch {
    return undefined;
  }
}

/** Process records from a meta file, or undefined when absent or not well-formed. */
export function validProcesses(value: unknown): ProcessRecord[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const ok = value.every(
    (p: Partial<ProcessRecord>) =>
      typeof p === "object" &&
      p !== null &&
      Number.isInteger(p.pid) &&
      Array.isArray(p.uids) &&
      p.uids.every((u) => Number.isInteger(u)) &&
      typeof p.cgroup === "string",
  );
  return ok ? (value as ProcessRecord[]) : undefined;
}
