// The images of a migration as a stream of chunks, and their reassembly on the other side. The
// one place that knows how images travel between the two gateways (the streamed checkpoint
// transfer can replace it behind these two functions).
import { promises as fs } from "node:fs";
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

/** The images of `dir`, file after file in name order, each in chunks of at most CHUNK_BYTES. */
export async function* readImageChunks(dir: string): AsyncGenerator<ImageChunk> {
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && isImage(e.name))
    .map((e) => e.name)
    .sort();
  for (const name of names) {
    const file = await fs.open(join(dir, name), "r");
    try {
      let offset = 0;
      for (;;) {
        const data = Buffer.allocUnsafe(CHUNK_BYTES);
        const { bytesRead } = await file.read(data, 0, CHUNK_BYTES, offset);
        // An empty file still travels, as one empty chunk, so that it exists on the other side.
        if (bytesRead === 0 && offset > 0) break;
        yield { name, offset, data: data.subarray(0, bytesRead) };
        offset += bytesRead;
        if (bytesRead < CHUNK_BYTES) break;
      }
    } finally {
      await file.close();
    }
  }
}

/** Writes chunks into `dir`, refusing names that escape it and chunks out of order. */
export class ImageWriter {
  #current: { name: string; size: number; file: fs.FileHandle } | undefined;
  readonly #done = new Set<string>();
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
    await current.file.write(chunk.data, 0, chunk.data.length, chunk.offset);
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
    await this.#current?.file.close().catch(() => undefined);
    this.#current = undefined;
  }

  async #open(name: string): Promise<void> {
    if (!isImage(name))
      throw invalidArgument(`chunk: ${JSON.stringify(name.slice(0, 64))} is not an image name`);
    if (this.#done.has(name)) throw invalidArgument(`chunk: ${name} came again after other files`);
    await this.#closeCurrent();
    // wx: never replace a file; 0600, as every file of the image store.
    const file = await fs.open(join(this.dir, name), "wx", 0o600);
    this.#current = { name, size: 0, file };
  }

  async #closeCurrent(): Promise<void> {
    if (!this.#current) return;
    await this.#current.file.close();
    this.#done.add(this.#current.name);
    this.#current = undefined;
  }
}
