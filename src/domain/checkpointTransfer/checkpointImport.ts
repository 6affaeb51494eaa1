// Receiving a transferred checkpoint: each checkpoint of the manifest staged in a temporary
// directory of the image store, every file written in order, its size and SHA-256 checked, and
// published only when complete; on any failure everything staged or published by this import is
// removed again. Checkpoints of a chain are published parent first (the store stages a child
// only on a published parent), so a parent is visible for the moment its children are received.
import { createHash, type Hash } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError, invalidArgument } from "../errors.js";
import { type CheckpointInfo, type CheckpointMeta, ImageStore, type StagedDump } from "../imageStore.js";
import { type Compression, decompressChunk } from "./compression.js";
import { isTransferableName } from "./names.js";

/** The largest chunk a sender may declare: it must fit in one gRPC message with room to spare. */
export const MAX_CHUNK_BYTES = 2 * 1024 * 1024;

export interface IncomingFile {
  name: string;
  sizeBytes: number;
  sha256: Uint8Array;
}

export interface IncomingCheckpoint {
  /** The id it gets here. */
  id: string;
  meta: CheckpointMeta;
  files: IncomingFile[];
}

export interface ImportManifest {
  /** Oldest first; each one's meta.parentId is the one before it (the first's must exist here). */
  checkpoints: IncomingCheckpoint[];
  compression: Compression;
  chunkBytes: number;
  totalBytes: number;
}

export interface IncomingChunk {
  fileIndex: number;
  offset: number;
  data: Uint8Array;
  zstd: boolean;
  rawBytes: number;
}

/** Counts the chunks an import holds (the one being written), for the gateway's statistics. */
export interface ChunkCounter {
  add(n: number): void;
}

interface FileSlot extends IncomingFile {
  checkpointIndex: number;
}

export class CheckpointImport {
  readonly #files: FileSlot[];
  #current = -1;
  #handle: FileHandle | undefined;
  #hash: Hash | undefined;
  #written = 0;
  /**
   * The write of the previous chunk, still running: the disk writes one chunk while the next
   * arrives, and at most that one chunk is held for it.
   */
  #writing: Promise<unknown> = Promise.resolve();
  #staged: { index: number; dump: StagedDump } | undefined;
  readonly #published: CheckpointInfo[] = [];
  #bytesDone = 0;
  #wireBytes = 0;
  #ended = false;

  private constructor(
    private readonly store: ImageStore,
    private readonly manifest: ImportManifest,
    private readonly held: ChunkCounter | undefined,
  ) {
    this.#files = manifest.checkpoints.flatMap((c, checkpointIndex) =>
      c.files.map((f) => ({ ...f, checkpointIndex })),
    );
  }

  /**
   * Checks the manifest against itself and the store, and stages the first checkpoint.
   * INVALID_ARGUMENT for a manifest that does not hold together, ALREADY_EXISTS for an id taken
   * here, FAILED_PRECONDITION for a parent missing here, RESOURCE_EXHAUSTED for a disk too full.
   */
  static async begin(
    store: ImageStore,
    manifest: ImportManifest,
    held?: ChunkCounter,
  ): Promise<CheckpointImport> {
    validateManifest(manifest);
    for (const c of manifest.checkpoints) {
      if (await exists(store, c.id)) {
        throw new GatewayError(
          "ALREADY_EXISTS",
          `checkpoint ${c.id} already exists here; import under another id or delete it`,
        );
      }
    }
    const parent = manifest.checkpoints[0]?.meta.parentId;
    if (parent !== undefined && !(await exists(store, parent))) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${manifest.checkpoints[0]?.id} is incremental to checkpoint ${parent}, which is not here; import ${parent} first, or export with include_parents`,
      );
    }
    const free = await fs.statfs(store.root).then((s) => s.bavail * s.bsize);
    if (free < manifest.totalBytes) {
      throw new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the checkpoint needs ${manifest.totalBytes} bytes and the image store's filesystem has ${free} free`,
      );
    }
    const incoming = new CheckpointImport(store, manifest, held);
    await incoming.#stage(0);
    return incoming;
  }

  /** Bytes of files received so far (after decompression), and as they came on the wire. */
  get bytesDone(): number {
    return this.#bytesDone;
  }
  get wireBytes(): number {
    return this.#wireBytes;
  }

  /** Writes one chunk. INVALID_ARGUMENT when it does not fit the manifest, DATA_LOSS on a bad hash. */
  async write(chunk: IncomingChunk): Promise<void> {
    if (this.#ended) throw new Error("import already ended");
    const file = this.#files[chunk.fileIndex];
    if (!file) {
      throw invalidArgument(
        `chunk for file ${chunk.fileIndex}, but the manifest lists ${this.#files.length} files`,
      );
    }
    if (chunk.fileIndex < this.#current) {
      throw invalidArgument(
        `chunk for file ${file.name} after the chunks of a later file: files come in manifest order`,
      );
    }
    while (this.#current < chunk.fileIndex) await this.#next();
    const what = `file ${file.name} of checkpoint ${this.#checkpointId(file)}`;
    if (chunk.offset !== this.#written) {
      throw invalidArgument(
        `${what}: chunk at offset ${chunk.offset}, but ${this.#written} bytes came before it: chunks come in order, without gaps`,
      );
    }
    let data = chunk.data;
    if (chunk.zstd) {
      if (this.manifest.compression !== "zstd")
        throw invalidArgument(`${what}: a zstd chunk, but the manifest says no compression`);
      if (chunk.rawBytes < 1 || chunk.rawBytes > this.manifest.chunkBytes) {
        throw invalidArgument(
          `${what}: raw_bytes ${chunk.rawBytes} is not between 1 and chunk_bytes (${this.manifest.chunkBytes})`,
        );
      }
      if (chunk.rawBytes > file.sizeBytes - this.#written) throw tooMuch(what, file.sizeBytes);
      data = decompressChunk(chunk.data, chunk.rawBytes, what);
    }
    if (data.length === 0 || data.length > this.manifest.chunkBytes) {
      throw invalidArgument(
        `${what}: a chunk of ${data.length} bytes; chunks hold 1 to chunk_bytes (${this.manifest.chunkBytes})`,
      );
    }
    if (data.length > file.sizeBytes - this.#written) throw tooMuch(what, file.sizeBytes);
    this.#hash?.update(data);
    await this.#writing;
    this.held?.add(1);
    this.#writing = (this.#handle?.write(data, 0, data.length, this.#written) ?? Promise.resolve()).finally(
      () => this.held?.add(-1),
    );
    // Failed writes surface at the next chunk or at the file's end, not as unhandled rejections.
    this.#writing.catch(() => {});
    this.#written += data.length;
    this.#bytesDone += data.length;
    this.#wireBytes += chunk.data.length;
  }

  /** Completes the last files and publishes; the checkpoints published, oldest first. */
  async finish(): Promise<CheckpointInfo[]> {
    if (this.#ended) throw new Error("import already ended");
    while (this.#current < this.#files.length) await this.#next();
    this.#ended = true;
    return this.#published;
  }

  /** Removes whatever this import staged or published. Never throws; idempotent. */
  async abort(): Promise<void> {
    this.#ended = true;
    await this.#writing.catch(() => {});
    await this.#handle?.close().catch(() => {});
    this.#handle = undefined;
    await this.#staged?.dump.discard();
    this.#staged = undefined;
    for (const info of this.#published.splice(0).reverse()) {
      await this.store.delete(info.id).catch(() => {});
    }
  }

  #checkpointId(file: FileSlot): string {
    return this.manifest.checkpoints[file.checkpointIndex]?.id ?? "";
  }

  /** Closes and checks the current file, then opens the next (staging or publishing on the way). */
  async #next(): Promise<void> {
    const done = this.#files[this.#current];
    if (done) await this.#closeFile(done);
    this.#current++;
    const next = this.#files[this.#current];
    const checkpointIndex = next?.checkpointIndex ?? this.manifest.checkpoints.length;
    // Checkpoints without files are passed on the way too.
    while (this.#staged && this.#staged.index < checkpointIndex) {
      await this.#publishStaged();
      const last = Math.min(checkpointIndex, this.manifest.checkpoints.length - 1);
      if (this.#published.length <= last) await this.#stage(this.#published.length);
    }
    if (!next) return;
    const dump = this.#staged?.dump;
    if (!dump) throw new Error("no checkpoint staged");
    this.#handle = await fs.open(
      join(dump.path, next.name),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    this.#hash = createHash("sha256");
    this.#written = 0;
  }

  async #closeFile(file: FileSlot): Promise<void> {
    await this.#writing;
    await this.#handle?.close();
    this.#handle = undefined;
    const what = `file ${file.name} of checkpoint ${this.#checkpointId(file)}`;
    if (this.#written !== file.sizeBytes) {
      throw new GatewayError(
        "DATA_LOSS",
        `${what}: ${this.#written} of its ${file.sizeBytes} bytes came; the stream ended or moved on before the file was complete`,
      );
    }
    const sha256 = this.#hash?.digest();
    if (!sha256?.equals(file.sha256)) {
      throw new GatewayError(
        "DATA_LOSS",
        `${what}: its bytes do not match the manifest's SHA-256; nothing was imported`,
      );
    }
  }

  async #stage(index: number): Promise<void> {
    const c = this.manifest.checkpoints[index];
    if (!c) throw new Error(`no checkpoint ${index} in the manifest`);
    this.#staged = { index, dump: await this.store.stage(c.id, c.meta.parentId) };
  }

  async #publishStaged(): Promise<void> {
    const staged = this.#staged;
    const c = staged && this.manifest.checkpoints[staged.index];
    if (!staged || !c) return;
    this.#staged = undefined;
    this.#published.push(await staged.dump.publish({ ...c.meta, importedImages: true, durability: "fsync" }));
  }
}

function tooMuch(what: string, size: number): GatewayError {
  return invalidArgument(`${what}: more bytes came than the ${size} the manifest declares`);
}

async function exists(store: ImageStore, id: string): Promise<boolean> {
  return (await store.lineage(id)).length > 0;
}

/** The manifest's own consistency: ids, chain, names, sizes, hashes. */
export function validateManifest(m: ImportManifest): void {
  if (m.checkpoints.length === 0) throw invalidArgument("manifest: it lists no checkpoint");
  if (!Number.isInteger(m.chunkBytes) || m.chunkBytes < 1 || m.chunkBytes > MAX_CHUNK_BYTES) {
    throw invalidArgument(`manifest: chunk_bytes ${m.chunkBytes} is not between 1 and ${MAX_CHUNK_BYTES}`);
  }
  const ids = new Set<string>();
  let total = 0;
  m.checkpoints.forEach((c, i) => {
    ImageStore.validateId(c.id, `manifest: checkpoint ${i}'s id`);
    if (ids.has(c.id)) throw invalidArgument(`manifest: checkpoint ${c.id} is listed twice`);
    ids.add(c.id);
    if (c.meta.parentId !== undefined)
      ImageStore.validateId(c.meta.parentId, `manifest: the parent of ${c.id}`);
    const previous = m.checkpoints[i - 1];
    if (previous && c.meta.parentId !== previous.id) {
      throw invalidArgument(
        `manifest: checkpoint ${c.id} follows ${previous.id} but its parent is ${c.meta.parentId ?? "none"}: a chain lists each parent before its child`,
      );
    }
    const names = new Set<string>();
    for (const f of c.files) {
      if (!isTransferableName(f.name)) {
        throw invalidArgument(
          `manifest: ${JSON.stringify(f.name.slice(0, 64))} in checkpoint ${c.id} is not a plain file name (no directories, no leading dot, at most 128 characters of A-Z a-z 0-9 . _ -)`,
        );
      }
      if (names.has(f.name))
        throw invalidArgument(`manifest: ${f.name} is listed twice in checkpoint ${c.id}`);
      names.add(f.name);
      if (!Number.isSafeInteger(f.sizeBytes) || f.sizeBytes < 0) {
        throw invalidArgument(`manifest: ${f.name} of ${c.id} has size ${f.sizeBytes}`);
      }
      if (f.sha256.length !== 32)
        throw invalidArgument(`manifest: ${f.name} of ${c.id} has no 32-byte SHA-256`);
      total += f.sizeBytes;
    }
  });
  if (total !== m.totalBytes) {
    throw invalidArgument(
      `manifest: total_bytes is ${m.totalBytes}, but its files' sizes add up to ${total}`,
    );
  }
}
