// The identity of the CRIU binary on disk, for answers that depend on nothing but the binary (its
// VERSION): kept under this identity, they hold until the file is replaced or rewritten.
import { statSync } from "node:fs";

/**
 * Device, inode, size, and modification and change times (ns) of the file `path` names, symlinks
 * followed: a binary replaced by a rename gets a new inode, one rewritten in place a new change
 * time (which no one can set back). Undefined when there is no such file, e.g. for a bare name
 * that spawn looks up in PATH. One stat of a local file: synchronous, since a stat through the
 * thread pool costs the event loop more (measured: ~5 µs against ~20 µs).
 */
export function criuBinaryIdentity(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}
