// File system steps the image store takes with care: descriptors CRIU reaches through /proc,
// no symlinks followed, and fsync before anything is called durable.

import { closeSync, constants, promises as fs, openSync } from "node:fs";
import { join } from "node:path";
import type { Durability } from "./imageStore.js";

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
export const readNoFollow = constants.O_RDONLY | constants.O_NOFOLLOW;

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

/** Whether anything (a symlink included, not followed) is at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, "ENOENT")) return false;
    throw err;
  }
}

export async function openDirFd(path: string): Promise<number> {
  // A plain descriptor number, not a FileHandle: CRIU reaches it through /proc, and the store
  // closes it itself when the operation ends.
  return openSync(path, O_DIR);
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}

/**
 * Makes every file of a checkpoint directory private and, for "fsync", flushes them and then the
 * directory; says how large its files are and which there are. The flushes are issued together:
 * the filesystem then commits its journal once for the batch rather than once per file (a small
 * dump's files took 72 ms one after another and 3.5 ms together, here on ext4; syncfs() was no
 * faster and would flush other users' data too). A file `settled` says an earlier pass settled
 * as it is now (same size and mtime, its "stamp") is only looked at: one lstat instead of an
 * open, fstat, fchmod, (fsync) and close, which for a small dump's second pass was most of the
 * time it took.
 */
export async function settleTree(
  dir: string,
  durability: Durability,
  settled?: (name: string, stamp: string) => boolean,
): Promise<{ sizeBytes: number; names: string[]; stamps: Map<string, string> }> {
  const files = (await fs.readdir(dir, { withFileTypes: true })).filter((entry) => entry.isFile());
  const stamps = new Map<string, string>();
  const results = await Promise.allSettled(
    files.map(async (entry) => {
      const path = join(dir, entry.name);
      if (settled) {
        const st = await fs.lstat(path);
        const stamp = `${st.size}:${st.mtimeMs}`;
        if (st.isFile() && settled(entry.name, stamp)) {
          stamps.set(entry.name, stamp);
          return st.size;
        }
      }
      return settleFile(path, entry.name, durability, stamps);
    }),
  );
  let sizeBytes = 0;
  for (const result of results) {
    if (result.status === "rejected") throw result.reason;
    sizeBytes += result.value;
  }
  if (durability !== "none") await syncDir(dir);
  return { sizeBytes, names: files.map((entry) => entry.name), stamps };
}

/** One file made private and, for "fsync", flushed; its stamp recorded. Gives its size. */
async function settleFile(
  path: string,
  name: string,
  durability: Durability,
  stamps: Map<string, string>,
): Promise<number> {
  const handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const { size, mtimeMs } = await handle.stat();
    await handle.chmod(FILE_MODE);
    if (durability !== "none") await handle.sync();
    stamps.set(name, `${size}:${mtimeMs}`);
    return size;
  } finally {
    await handle.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, O_DIR);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `dir/name` with `text` at once: written to a temporary name beside it, fsynced (for
 * "fsync"), then renamed over it. A failure leaves the old file as it was.
 */
export async function replaceFile(
  dir: string,
  name: string,
  text: string,
  durability: Durability = "fsync",
): Promise<void> {
  const tmp = join(dir, `.${name}-${process.pid}-${Date.now()}`);
  try {
    const handle = await fs.open(tmp, "wx", FILE_MODE);
    try {
      await handle.writeFile(text);
      if (durability !== "none") await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  if (durability !== "none") await syncDir(dir);
}
