// A small tmpfs, for a store that runs out of space at a moment the test chooses.
import { execFileSync } from "node:child_process";
import { closeSync, promises as fs, mkdirSync, openSync, writeSync } from "node:fs";

/** Mounts a tmpfs of `sizeBytes` at `dir` (created if needed); returns its unmount. */
export function mountTmpfs(dir: string, sizeBytes: number): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0700`, "tmpfs", dir]);
  return () => execFileSync("umount", ["-l", dir]);
}

/** Fills the file system of `path` until a write fails with ENOSPC: the filler is that file. */
export async function fillUp(path: string): Promise<void> {
  // Large writes first, then small ones for the last partial block.
  for (const size of [64 * 1024, 512]) appendUntilFull(path, Buffer.alloc(size, 0x78));
  await fs.stat(path);
}

function appendUntilFull(path: string, chunk: Buffer): void {
  const fd = openSync(path, "a");
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}
