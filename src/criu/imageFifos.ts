// Images CRIU waits for. Every CRIU process first detects the kernel's features, tens of
// milliseconds where CRIU cannot keep its cache (a /run that is not tmpfs), and only then opens
// its images. A CRIU started before its images exist reads them from a directory of its own in
// which the first ones it opens are named pipes: its open waits there, after its start-up, until
// the images are in; then the others are linked in and those written into their pipes.
import { constants, promises as fs, linkSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { makeFifo } from "./seqpacket.js";

/** Makes `names` named pipes in `dir` (an empty directory of the waiting CRIU's own). */
export function makeImageFifos(dir: string, names: readonly string[]): void {
  for (const name of names) makeFifo(join(dir, name), 0o600);
}

/**
 * Hard links of the images in `from` into `to` but for `except` (the pipes): the same files, no
 * copy. Synchronous: a dozen links take less than one trip through the thread pool, and this runs
 * while a tree is frozen.
 */
export function linkImages(from: string, to: string, except: readonly string[]): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".img") || except.includes(entry.name)) continue;
    linkSync(join(from, entry.name), join(to, entry.name));
  }
}

/**
 * Writes `bytes` into the pipe `fifo` and closes it: its reader gets them, then end-of-file
 * (empty `bytes`: an image that will never come, which makes CRIU fail). Opening a pipe for
 * writing waits for its reader; should the reader go first (`readerGone`), a reader opened here,
 * and held until then, lets that open return.
 */
export async function fillImageFifo(
  fifo: string,
  bytes: Uint8Array,
  readerGone: Promise<unknown>,
): Promise<void> {
  const opening = fs.open(fifo, constants.O_WRONLY);
  const released = readerGone.then(async () => {
    const reader = await fs.open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    await opening.catch(() => undefined);
    await reader.close();
  });
  released.catch(() => undefined);
  const pipe = await opening;
  try {
    if (bytes.length > 0) await pipe.write(bytes);
  } finally {
    await pipe.close();
  }
}
