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
  const fd = openSync(path, "a");
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  // The last partial block too.
  const small = Buffer.alloc(512, 0x78);
  const again = openSync(path, "a");
  try {
    for (;;) writeSync(again, small);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(again);
  }
  await fs.stat(path);
}
