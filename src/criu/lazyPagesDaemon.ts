// CRIU's lazy-pages daemon (`criu lazy-pages`), which has no RPC request: the process that fills a
// restored tree's memory on demand (userfaultfd) from a page server, here through a socket the
// gateway hands it rather than a TCP connection of its own.
//
// It must listen before the RESTORE that needs it: CRIU's restore meets it on `lazy-pages.socket`
// in its work directory, which must be the daemon's work directory too. It exits once every page
// of the tree is in (0), or when it cannot go on (non-zero: memory that never arrived).
//
// It is started before its images exist, so that its start-up (CRIU's kernel feature detection,
// tens of milliseconds) does not come between their arrival and the restore, with the tree frozen
// on both hosts: it waits for them in a directory of its own (./imageFifos.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fillImageFifo, linkImages, makeImageFifos } from "./imageFifos.js";

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
    makeImageFifos(options.viewDir, START_IMAGES);
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
      linkImages(imagesDir, this.#viewDir, START_IMAGES);
      for (const name of START_IMAGES) {
        const bytes = readFileSync(join(imagesDir, name));
        await fillImageFifo(join(this.#viewDir, name), bytes, this.exited);
      }
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

  /** What it printed on stdout and stderr, the last 4 KiB (its log goes to LAZY_PAGES_LOG). */
  get outputTail(): string {
    return this.#output;
  }

  /** Stops it at once; `exited` resolves once it is reaped. */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
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
