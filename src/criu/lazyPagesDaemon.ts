// CRIU's lazy-pages daemon (`criu lazy-pages`), which has no RPC request: the process that fills a
// restored tree's memory on demand (userfaultfd) from a page server, here through a socket the
// gateway hands it rather than a TCP connection of its own.
//
// It must run before the RESTORE that needs it: CRIU's restore meets it on `lazy-pages.socket` in
// the work directory, which is the images directory for both. It exits once every page of the
// tree is in (0), or when it cannot go on (non-zero: memory that never arrived).
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";

export const LAZY_PAGES_LOG = "lazy-pages.log";

export interface LazyPagesOptions {
  criuBin: string;
  /** The restore's images directory, which is also the work directory of both. */
  imagesDir: string;
  /** The daemon's end of the page server connection (a stream socket), inherited as its fd 3. */
  pageSocket: number;
  /** CRIU's log level for the daemon's log (lazy-pages.log in imagesDir). */
  logLevel?: number;
}

/** How the daemon ended: `code` 0 means every page arrived. */
export interface LazyPagesExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running lazy-pages daemon. */
export class LazyPagesDaemon {
  readonly #child: ChildProcess;
  readonly exited: Promise<LazyPagesExit>;
  #output = "";

  private constructor(child: ChildProcess) {
    this.#child = child;
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
  }

  /**
   * Starts the daemon and resolves once it listens for the restore (its status fd), or rejects
   * with what it printed when it exits first.
   */
  static async start(options: LazyPagesOptions): Promise<LazyPagesDaemon> {
    const args = [
      "lazy-pages",
      "--page-server",
      "--ps-socket",
      "3",
      "--status-fd",
      "4",
      "-D",
      options.imagesDir,
      "-W",
      options.imagesDir,
      "-o",
      LAZY_PAGES_LOG,
      `-v${options.logLevel ?? 4}`,
    ];
    const child = spawn(options.criuBin, args, {
      // fd 4 is a socket of Node's: CRIU writes one byte to it when it listens, then closes it.
      stdio: ["ignore", "pipe", "pipe", options.pageSocket, "pipe"],
      detached: true,
    });
    const daemon = new LazyPagesDaemon(child);
    const status = child.stdio[4] as Readable | null;
    const ready = new Promise<boolean>((resolve) => {
      if (!status) return resolve(false);
      status.once("data", () => resolve(true));
      status.once("end", () => resolve(false));
      status.once("error", () => resolve(false));
    });
    const started = await Promise.race([ready, daemon.exited.then(() => false)]);
    status?.destroy();
    if (!started) {
      daemon.kill();
      const exit = await daemon.exited;
      throw new Error(
        `CRIU's lazy-pages daemon ended before it was ready (exit ${exit.code ?? exit.signal}): ${daemon.outputTail.trim() || `see ${LAZY_PAGES_LOG}`}`,
      );
    }
    return daemon;
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
}
