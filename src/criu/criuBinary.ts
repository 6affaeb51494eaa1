// The identity of the CRIU binary on disk, for answers that depend on nothing but the binary (its
// VERSION): kept under this identity, they hold until the file is replaced or rewritten.
import { statSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * Device, inode, size, and modification and change times (ns) of the file `path` names, symlinks
 * followed: a binary replaced by a rename gets a new inode, one rewritten in place a new change
 * time (which no one can set back). A bare name is looked up in PATH, as spawn does. Undefined
 * when there is no such file. Synchronous: a stat of a local file takes microseconds, and one
 * through the thread pool costs the event loop more (measured: ~5 µs against ~20 µs).
 */
export function criuBinaryIdentity(path: string): string | undefined {
  const candidates = path.includes("/")
    ? [path]
    : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir || ".", path));
  for (const candidate of candidates) {
    try {
      const s = statSync(candidate, { bigint: true });
      if (s.isFile()) return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch {
      // Not this one.
    }
  }
  return undefined;
}
