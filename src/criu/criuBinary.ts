// The identity of the CRIU binary on disk, for answers that depend on nothing but the binary (its
// VERSION): kept under this identity, they hold until the file is replaced or rewritten.
import { stat } from "node:fs/promises";

/**
 * Device, inode, size, and modification and change times (ns) of the file `path` names, symlinks
 * followed: a binary replaced by a rename gets a new inode, one rewritten in place a new change
 * time (which no one can set back). Undefined when there is no such file, e.g. for a bare name
 * that spawn looks up in PATH. One stat, off the event loop.
 */
export async function criuBinaryIdentity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}
