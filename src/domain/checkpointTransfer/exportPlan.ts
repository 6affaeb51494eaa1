// What an export sends: a checkpoint (and, on request, its parent chain, oldest first), each
// with its files' names, sizes, modes and SHA-256, held open against deletion until the export
// ends. Then the files' bytes, chunk by chunk, read only as fast as the caller takes them.
import { constants, promises as fs } from "node:fs";
import { join } from "node:path";
import { GatewayError } from "../errors.js";
import { type CheckpointInfo, type ImageStore, META_FILE, type OpenedCheckpoint } from "../imageStore.js";
import type { FileHashes } from "./fileHashes.js";
import { isTransferableName } from "./names.js";

export interface ExportedFile {
  name: string;
  sizeBytes: number;
  mode: number;
  sha256: Buffer;
  path: string;
}

export interface ExportedCheckpoint {
  info: CheckpointInfo;
  files: ExportedFile[];
}

export interface ExportPlan {
  /** Oldest first; the checkpoint asked for is the last. */
  checkpoints: ExportedCheckpoint[];
  totalBytes: number;
  /** Lets the checkpoints be deleted again. Idempotent. */
  close(): Promise<void>;
}

/** One piece of a file, read into a buffer with free bytes before it (see readChunks). */
export interface ExportChunk {
  /** The file's index among all files of the plan, in order. */
  fileIndex: number;
  offset: number;
  data: Buffer;
  /** Says that data is no longer needed: its buffer may be read into again. */
  release(): void;
}

/**
 * Buffers of one size, reused: a transfer reads a gigabyte through a handful of them instead of
 * leaving a mebibyte of garbage per chunk, which made the collector run a full collection every
 * few dozen chunks. Keeps at most `keep` free buffers.
 */
export class ChunkBuffers {
  readonly #free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.#free.length < this.keep) this.#free.push(buffer);
  }
}

/**
 * Opens the checkpoint (with its parent chain when `includeParents`) and hashes its files.
 * NOT_FOUND when it does not exist; FAILED_PRECONDITION when a parent asked for is missing here.
 */
export async function planExport(
  store: ImageStore,
  checkpointId: string,
  includeParents: boolean,
  hashes: FileHashes,
  signal?: AbortSignal,
): Promise<ExportPlan> {
  const ids = [checkpointId];
  if (includeParents) {
    const lineage = await store.lineage(checkpointId);
    ids.push(...lineage.slice(1).map((c) => c.id));
    const oldest = lineage.at(-1);
    if (oldest?.parentId !== undefined) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${oldest.id}, an ancestor of ${checkpointId}, has parent ${oldest.parentId}, which is not in this gateway's image store; the chain cannot be sent whole`,
      );
    }
  }
  const opened: OpenedCheckpoint[] = [];
  const close = async () => {
    for (const o of opened.splice(0)) await o.close();
  };
  try {
    const checkpoints: ExportedCheckpoint[] = [];
    for (const id of ids.reverse()) {
      const checkpoint = await store.openCheckpoint(id);
      opened.push(checkpoint);
      checkpoints.push({ info: checkpoint.info, files: await listFiles(checkpoint.path, hashes, signal) });
    }
    const totalBytes = checkpoints.reduce((n, c) => n + c.files.reduce((m, f) => m + f.sizeBytes, 0), 0);
    return { checkpoints, totalBytes, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function listFiles(dir: string, hashes: FileHashes, signal?: AbortSignal): Promise<ExportedFile[]> {
  const files: ExportedFile[] = [];
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name !== META_FILE && isTransferableName(e.name))
    .map((e) => e.name)
    .sort();
  for (const name of names) {
    const path = join(dir, name);
    const { sha256, size, mode } = await hashes.hash(path, signal);
    files.push({ name, sizeBytes: size, mode, sha256, path });
  }
  return files;
}

/**
 * The plan's files as chunks of at most `chunkBytes`, in order. Each chunk's data sits in a
 * buffer of its own (from `buffers` when given, which must hold `headroom + chunkBytes`) with
 * `headroom` free bytes before it, so that a message header can be written in front of it
 * without copying the data. One chunk is read ahead, so that the disk works while the consumer
 * sends; nothing more. ABORTED when a file changed size since it was hashed.
 */
export async function* readChunks(
  plan: ExportPlan,
  chunkBytes: number,
  headroom: number,
  signal?: AbortSignal,
  buffers?: ChunkBuffers,
): AsyncGenerator<ExportChunk> {
  if (buffers && buffers.size < headroom + chunkBytes) throw new Error("chunk buffers too small");
  let fileIndex = -1;
  for (const checkpoint of plan.checkpoints) {
    for (const file of checkpoint.files) {
      fileIndex++;
      if (file.sizeBytes === 0) continue;
      const handle = await fs.open(file.path, constants.O_RDONLY | constants.O_NOFOLLOW);
      const read = async (offset: number): Promise<ExportChunk> => {
        const length = Math.min(chunkBytes, file.sizeBytes - offset);
        const buffer = buffers?.take() ?? Buffer.allocUnsafeSlow(headroom + length);
        const { bytesRead } = await handle.read(buffer, headroom, length, offset);
        if (bytesRead !== length) throw changed(checkpoint.info.id, file.name);
        const release = () => buffers?.give(buffer);
        return { fileIndex, offset, data: buffer.subarray(headroom, headroom + length), release };
      };
      let next: Promise<ExportChunk> | undefined = read(0);
      try {
        while (next) {
          const chunk: ExportChunk = await next;
          const offset = chunk.offset + chunk.data.length;
          next = offset < file.sizeBytes ? read(offset) : undefined;
          // A read ahead that is abandoned (the consumer stopped) must not reject unheard.
          next?.catch(() => {});
          signal?.throwIfAborted();
          yield chunk;
        }
        if ((await handle.stat()).size !== file.sizeBytes) throw changed(checkpoint.info.id, file.name);
      } finally {
        await next?.catch(() => {});
        await handle.close();
      }
    }
  }
}

function changed(id: string, name: string): GatewayError {
  return new GatewayError(
    "ABORTED",
    `file ${name} of checkpoint ${id} changed size while it was exported (a restore with auto_dedup?); export again`,
  );
}
