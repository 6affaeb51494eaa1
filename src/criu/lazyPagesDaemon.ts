// CRIU's lazy-pages daemon (`criu lazy-pages`), which has no RPC request: the process that fills a
// restored tree's memory on demand (userfaultfd) from a page server, here through a socket the
// gateway hands it rather than a TCP connection of its own.
//
// It must listen before the RESTORE that needs it: CRIU's restore meets it on `lazy-pages.socket`
// in its work directory, which must be the daemon's work directory too. It exits once every page
// of the tree is in (0), or when it cannot go on (non-zero: memory that never arrived).
//
// It is started before its images exist. Every CRIU process first detects the kernel's features,
// tens of milliseconds where CRIU cannot keep its cache (a /run that is not tmpfs), and that
// start-up would otherwise come between the images' arrival and the restore, with the tree
// frozen on both hosts. So the daemon reads its images from a directory of its own, where the
// two it reads as it starts (the inventory and the process tree) are named pipes: it waits on
// them until the images are in, then the gateway links the images in and writes those two.
import { type ChildProcess, spawn } from "node:child_process";
import { constants, promises as fs, linkSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { makeFifo } from "./seqpacket.js";

export const LAZY_PAGES_LOG = "lazy-pages.log";

/**
 * The images CRIU's daemon reads before it listens, in the order it opens them (its
 * prepare_dummy_pstree; the per-process ids images it reads after these are linked in by then).
 */
const START_IMAGES = ["inventory.img", "pstree.img"] as const;

export interface LazyPagesOptions {
  criuBin: string;
  /**
   * An empty directory the daemon reads its images from (the gateway links them in): not the
   * images directory, which must hold the images themselves for the restore.
   */
  viewDir: string;
  /** The restore's work directory (its lazy-pages.socket and the daemon's log go there). */
  workDir: string;
  /** The daemon's end of the page server connection (a stream socket), inherited as its fd 3. */
  pageSocket: number;
  /** CRIU's log level for the daemon's log (lazy-pages.log in workDir). */
  logLevel?: number;
}

/** How the daemon ended: `code` 0 means every page arrived. */
export interface LazyPagesExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A lazy-pages daemon: started, then given its images, then pulling pages until it exits. */
export class LazyPagesDaemon {
  readonly #child: ChildProcess;
  readonly #viewDir: string;
  readonly #listening: Promise<boolean>;
  readonly exited: Promise<LazyPagesExit>;
  #output = "";

  private constructor(child: ChildProcess, viewDir: string) {
    this.#child = child;
    this.#viewDir = viewDir;
    const collect = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-4096);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => {
      child.once("error", (err) => {
        this.#output += `\ncannot start CRIU: ${err.message}`;
        if (child.pid === undefined) resolve({ code: null, signal: null });
      });
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    this.#listening = listeningSignal(child.stdio[4] as Readable | null, this.exited);
  }

  /**
   * Starts the daemon ahead of its images: it waits for them (imagesIn) after its start-up.
   * `viewDir` must exist and be empty.
   */
  static start(options: LazyPagesOptions): LazyPagesDaemon {
    for (const name of START_IMAGES) makeFifo(join(options.viewDir, name), 0o600);
    const args = [
      "lazy-pages",
      "--page-server",
      "--ps-socket",
      "3",
      "--status-fd",
      "4",
      "-D",
      options.viewDir,
      "-W",
      options.workDir,
      "-o",
      LAZY_PAGES_LOG,
      `-v${options.logLevel ?? 4}`,
    ];
    const child = spawn(options.criuBin, args, {
      // fd 4 is a socket of Node's: CRIU writes one byte to it when it listens, then closes it.
      stdio: ["ignore", "pipe", "pipe", options.pageSocket, "pipe"],
      detached: true,
    });
    return new LazyPagesDaemon(child, options.viewDir);
  }

  /**
   * Gives the daemon the images in `imagesDir` (complete, and staying there until it exits) and
   * resolves once it listens for the restore; rejects with what it printed when it ends first.
   */
  async imagesIn(imagesDir: string): Promise<void> {
    try {
      this.#linkImages(imagesDir);
      for (const name of START_IMAGES) await this.#writeStartImage(imagesDir, name);
      if (await this.#listening) return;
    } catch (err) {
      this.kill();
      const exit = await this.exited;
      throw new Error(
        `CRIU's lazy-pages daemon could not take the images: ${(err as Error).message} (it ended with ${exit.code ?? exit.signal}: ${this.#output.trim() || `see ${LAZY_PAGES_LOG}`})`,
        { cause: err },
      );
    }
    this.kill();
    const exit = await this.exited;
    throw new Error(
      `CRIU's lazy-pages daemon ended before it was ready (exit ${exit.code ?? exit.signal}): ${this.#output.trim() || `see ${LAZY_PAGES_LOG}`}`,
    );
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** What it printed on stdout and stderr, the last 4 KiB (its log goes to LAZY_PAGES_LOG). */
  get outputTail(): string {
    return this.#output;
  }

  /** Stops it at once; `exited` resolves once it is reaped. */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }

  /**
   * Hard links of CRIU's images into the daemon's directory: the same files, no copy. Done
   * without the thread pool (a dozen links take less than one trip through it) while the tree
   * is frozen.
   */
  #linkImages(imagesDir: string): void {
    const starting: readonly string[] = START_IMAGES;
    for (const entry of readdirSync(imagesDir, { withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".img") || starting.includes(entry.name)) continue;
      linkSync(join(imagesDir, entry.name), join(this.#viewDir, entry.name));
    }
  }

  /** Writes one of the images the daemon waits on into its pipe, which it reads to the end. */
  async #writeStartImage(imagesDir: string, name: string): Promise<void> {
    const fifo = join(this.#viewDir, name);
    const bytes = await fs.readFile(join(imagesDir, name));
    const opening = fs.open(fifo, constants.O_WRONLY);
    // Opening a pipe for writing waits for its reader. Should the daemon end first, a reader
    // opened here, and held until then, lets that open return; the write then fails.
    const released = this.exited.then(async () => {
      const reader = await fs.open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      await opening.catch(() => undefined);
      await reader.close();
    });
    released.catch(() => undefined);
    const pipe = await opening;
    try {
      await pipe.write(bytes);
    } finally {
      await pipe.close();
    }
  }
}

/** Resolves true once the daemon reports (by its status fd) that it listens, false if it ends first. */
function listeningSignal(status: Readable | null, exited: Promise<unknown>): Promise<boolean> {
  const ready = new Promise<boolean>((resolve) => {
    if (!status) return resolve(false);
    status.once("data", () => resolve(true));
    status.once("end", () => resolve(false));
    status.once("error", () => resolve(false));
  });
  return Promise.race([ready, exited.then(() => false)]).finally(() => status?.destroy());
}
