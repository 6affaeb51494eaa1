// The images of a migration as a stream of chunks, and their reassembly on the other side. The
// one place that knows how images travel between the two gateways (the streamed checkpoint
// transfer can replace it behind these two functions). Disk and link work at the same time: a
// chunk is read ahead on the source and written behind on the target, one chunk each.
import { closeSync, promises as fs, openSync, readSync, statSync, write, writeSync } from "node:fs";
import { join } from "node:path";
import { invalidArgument } from "../errors.js";
import { META_FILE } from "../imageStore.js";

/**
 * 1 MiB: large enough that per-message costs vanish against the copy, small enough that neither
 * gateway holds more than a few in memory (gRPC's default message limit is 4 MiB).
 */
export const CHUNK_BYTES = 1024 * 1024;

export interface ImageChunk {
  name: string;
  offset: number;
  data: Uint8Array;
}

const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** CRIU's files in a checkpoint directory: everything but the gateway's metadata and the logs. */
function isImage(name: string): boolean {
  return IMAGE_NAME.test(name) && name !== META_FILE && !name.endsWith(".log");
}

/**
 * Bytes kept free before each chunk's data read here, so that the wire side can write a message
 * header (with a name of up to 128 bytes) in front of it instead of copying a mebibyte.
 */
export const CHUNK_HEADROOM = 256;

/** The buffers readImageChunks allocated: the bytes before a chunk's data are nobody else's. */
const withHeadroom = new WeakSet<ArrayBufferLike>();

/** Free bytes before `data` that a writer may fill: CHUNK_HEADROOM for a chunk read here, else 0. */
export function headroomOf(data: Uint8Array): number {
  return withHeadroom.has(data.buffer) ? data.byteOffset : 0;
}

/**
 * Files and chunks up to this size are read and written without the thread pool: most images
 * are a few hundred bytes, and a post-copy migration moves them while the tree is frozen, where a
 * trip through the pool costs more than the copy.
 */
const SYNC_BYTES = 256 * 1024;

/** A buffer with CHUNK_HEADROOM free bytes before `size` bytes of data. */
function chunkBuffer(size: number): Buffer {
  const buffer = Buffer.allocUnsafeSlow(CHUNK_HEADROOM + size);
  withHeadroom.add(buffer.buffer);
  return buffer;
}

/** A small image whole, as its one chunk. */
function readSmallImage(path: string, name: string, size: number): ImageChunk {
  const buffer = chunkBuffer(size);
  const fd = openSync(path, "r");
  try {
    const bytesRead = readSync(fd, buffer, CHUNK_HEADROOM, size, 0);
    return { name, offset: 0, data: buffer.subarray(CHUNK_HEADROOM, CHUNK_HEADROOM + bytesRead) };
  } finally {
    closeSync(fd);
  }
}

/**
 * The images of `dir`, file after file in name order, each in chunks of at most CHUNK_BYTES.
 * The next chunk of a file is read while the consumer sends this one; no more is held.
 */
export async function* readImageChunks(dir: string): AsyncGenerator<ImageChunk> {
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && isImage(e.name))
    .map((e) => e.name)
    .sort();
  for (const name of names) {
    const size = statSync(join(dir, name)).size;
    if (size <= SYNC_BYTES) {
      yield readSmallImage(join(dir, name), name, size);
      continue;
    }
    const file = await fs.open(join(dir, name), "r");
    const read = async (offset: number): Promise<ImageChunk> => {
      const buffer = chunkBuffer(CHUNK_BYTES);
      const { bytesRead } = await file.read(buffer, CHUNK_HEADROOM, CHUNK_BYTES, offset);
      return { name, offset, data: buffer.subarray(CHUNK_HEADROOM, CHUNK_HEADROOM + bytesRead) };
    };
    let next: Promise<ImageChunk> | undefined = read(0);
    try {
      while (next) {
        const chunk: ImageChunk = await next;
        // A full chunk may have more after it; a short one (or an empty file's one empty chunk,
        // which makes the file exist on the other side) is the file's last.
        next = chunk.data.length === CHUNK_BYTES ? read(chunk.offset + CHUNK_BYTES) : undefined;
        next?.catch(() => {});
        yield chunk;
      }
    } finally {
      await next?.catch(() => {});
      await file.close();
    }
  }
}

/**
 * Writes chunks into `dir`, refusing names that escape it and chunks out of order. A large
 * chunk's write runs while the next chunk is received (one write at a time, one chunk held for
 * it); a failed write is reported by the next write or by finish. Small ones are written at once.
 */
export class ImageWriter {
  #current: { name: string; size: number; fd: number } | undefined;
  readonly #done = new Set<string>();
  #writing: Promise<unknown> = Promise.resolve();
  bytes = 0;

  constructor(private readonly dir: string) {}

  async write(chunk: ImageChunk): Promise<void> {
    if (this.#current?.name !== chunk.name) await this.#open(chunk.name);
    const current = this.#current;
    if (!current) throw new Error("no image file open");
    if (chunk.offset !== current.size) {
      throw invalidArgument(
        `chunk of ${chunk.name} at offset ${chunk.offset}; the file has ${current.size} bytes so far`,
      );
    }
    await this.#writing;
    if (chunk.data.length <= SYNC_BYTES) {
      writeSync(current.fd, chunk.data, 0, chunk.data.length, chunk.offset);
    } else {
      this.#writing = writeAt(current.fd, chunk.data, chunk.offset);
      this.#writing.catch(() => {});
    }
    current.size += chunk.data.length;
    this.bytes += chunk.data.length;
  }

  /** Closes the last file; the number of files written. */
  async finish(): Promise<number> {
    await this.#closeCurrent();
    return this.#done.size;
  }

  /** Closes whatever is open, for a migration that failed; the directory is the caller's to remove. */
  async abandon(): Promise<void> {
    await this.#writing.catch(() => undefined);
    if (this.#current) closeSync(this.#current.fd);
    this.#current = undefined;
  }

  async #open(name: string): Promise<void> {
    if (!isImage(name))
      throw invalidArgument(`chunk: ${JSON.stringify(name.slice(0, 64))} is not an image name`);
    if (this.#done.has(name)) throw invalidArgument(`chunk: ${name} came again after other files`);
    await this.#closeCurrent();
    // wx: never replace a file; 0600, as every file of the image store.
    const fd = openSync(join(this.dir, name), "wx", 0o600);
    this.#current = { name, size: 0, fd };
  }

  async #closeCurrent(): Promise<void> {
    if (!this.#current) return;
    const { name, fd } = this.#current;
    this.#current = undefined;
    try {
      await this.#writing;
    } finally {
      closeSync(fd);
    }
    this.#done.add(name);
  }
}

function writeAt(fd: number, data: Uint8Array, offset: number): Promise<void> {
  return new Promise((resolve, reject) =>
    write(fd, data, 0, data.length, offset, (err) => (err ? reject(err) : resolve())),
  );
}
