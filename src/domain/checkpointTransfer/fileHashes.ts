// SHA-256 of checkpoint files, remembered while a file is unchanged. A manifest needs every hash
// before the first byte is sent, so without this each export would read the whole checkpoint
// twice; checkpoints are written once, so a second export of the same one reads it once.
import { createHash } from "node:crypto";
import { constants, promises as fs } from "node:fs";

/** Files remembered at most; the oldest are forgotten first. */
const MAX_ENTRIES = 65_536;
const READ_BYTES = 1024 * 1024;

export class FileHashes {
  readonly #known = new Map<string, Buffer>();

  /**
   * The file's SHA-256 and what was hashed. The key is what changes when the file does (inode,
   * size, modification and change times), so a file rewritten in place (auto_dedup punches holes
   * into images) is hashed again.
   */
  async hash(path: string, signal?: AbortSignal): Promise<{ sha256: Buffer; size: number; mode: number }> {
    const handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const stat = await handle.stat({ bigint: true });
      const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
      const size = Number(stat.size);
      const mode = Number(stat.mode & 0o7777n);
      const known = this.#known.get(key);
      if (known) return { sha256: known, size, mode };
      const hash = createHash("sha256");
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      let position = 0;
      for (;;) {
        signal?.throwIfAborted();
        const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, position);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
      const sha256 = hash.digest();
      // Hashed what was there: a file that grew or shrank meanwhile is not remembered.
      if (position === size) {
        if (this.#known.size >= MAX_ENTRIES) {
          const oldest = this.#known.keys().next().value;
          if (oldest !== undefined) this.#known.delete(oldest);
        }
        this.#known.set(key, sha256);
      }
      return { sha256, size: position, mode };
    } finally {
      await handle.close();
    }
  }
}
