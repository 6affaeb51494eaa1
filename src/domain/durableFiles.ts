// File system steps the image store takes with care: descriptors CRIU reaches through /proc,
// no symlinks followed, and fsync before anything is called durable.

import { closeSync, constants, promises as fs, openSync } from "node:fs";
import { join } from "node:path";

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

/** fsyncs every file of a checkpoint directory, makes it private, then fsyncs the directory. */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const handle = await fs.open(join(dir, entry.name), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      await handle.chmod(FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  await syncDir(dir);
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
 * Replaces `dir/name` with `text` at once: written to a temporary name beside it, fsynced, then
 * renamed over it. A failure leaves the old file as it was.
 */
export async function replaceFile(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `.${name}-${process.pid}-${Date.now()}`);
  try {
    const handle = await fs.open(tmp, "wx", FILE_MODE);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, join(dir, name));
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}
