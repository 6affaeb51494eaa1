// File system steps the image store takes with care: descriptors CRIU reaches through /proc,
// no symlinks followed, and fsync before anything is called durable.

import {
  closeSync,
  constants,
  fchmodSync,
  promises as fs,
  fstatSync,
  fsync,
  lstatSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
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

/** How many files settleTree handles before it lets the event loop run. */
const FILES_PER_TURN = 256;

/**
 * Makes every file of a checkpoint directory private and, for "fsync", flushes them and then the
 * directory; says how large its files are and which there are. The flushes are issued together:
 * the filesystem then commits its journal once for the batch rather than once per file (a small
 * dump's files took 72 ms one after another and 3.5 ms together, here on ext4; syncfs() was no
 * faster and would flush other users' data too). A file `settled` says an earlier pass settled
 * as it is now (same size and mtime, its "stamp") is only looked at (one lstat).
 *
 * Everything but the flushes runs synchronously, yielding every FILES_PER_TURN files: opening,
 * fstat and fchmod of a file whose inode is cached take microseconds, while each step through the
 * thread pool costs a round trip (measured on a small dump's 17 files: 3.5 ms through the thread
 * pool, 0.4 ms synchronously; it runs while CRIU waits at post-dump, and again before the reply).
 */
export async function settleTree(
  dir: string,
  durability: Durability,
  settled?: (name: string, stamp: string) => boolean,
): Promise<{ sizeBytes: number; names: string[]; stamps: Map<string, string> }> {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name);
  const stamps = new Map<string, string>();
  const toFlush: number[] = [];
  let sizeBytes = 0;
  try {
    for (const [i, name] of names.entries()) {
      if (i > 0 && i % FILES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
      const path = join(dir, name);
      if (settled) {
        const st = lstatSync(path);
        const stamp = `${st.size}:${st.mtimeMs}`;
        if (st.isFile() && settled(name, stamp)) {
          stamps.set(name, stamp);
          sizeBytes += st.size;
          continue;
        }
      }
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      const keep = durability !== "none";
      if (keep) toFlush.push(fd);
      try {
        const st = fstatSync(fd);
        fchmodSync(fd, FILE_MODE);
        stamps.set(name, `${st.size}:${st.mtimeMs}`);
        sizeBytes += st.size;
      } finally {
        if (!keep) closeSync(fd);
      }
    }
    const flushed = await Promise.allSettled(toFlush.map((fd) => fsyncFd(fd)));
    for (const result of flushed) if (result.status === "rejected") throw result.reason;
  } finally {
    for (const fd of toFlush) closeQuietly(fd);
  }
  if (durability !== "none") await syncDir(dir);
  return { sizeBytes, names, stamps };
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * Flushes a directory's entries. Opened and closed synchronously (microseconds, as in settleTree):
 * only the flush waits in the thread pool, one round trip rather than three.
 */
export async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, O_DIR);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `dir/name` with `text` at once: written to a temporary name beside it, fsynced (for
 * "fsync"), then renamed over it, and the directory flushed unless `syncDirAfter` is false (its
 * caller flushes the directory next). A failure leaves the old file as it was. All but the
 * flushes synchronously, as in settleTree: a small file's open, write and rename take microseconds.
 */
export async function replaceFile(
  dir: string,
  name: string,
  text: string,
  durability: Durability = "fsync",
  syncDirAfter = true,
): Promise<void> {
  const tmp = join(dir, `.${name}-${process.pid}-${Date.now()}`);
  try {
    const fd = openSync(tmp, "wx", FILE_MODE);
    try {
      writeFileSync(fd, text);
      if (durability !== "none") await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, name));
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Left for the directory's removal or start-up recovery.
    }
    throw err;
  }
  if (durability !== "none" && syncDirAfter) await syncDir(dir);
}
