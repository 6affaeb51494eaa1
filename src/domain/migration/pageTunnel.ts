// A post-copy migration carries CRIU's page server connection (the source's dumping CRIU serving
// memory, the target's lazy-pages daemon asking for it) inside the migration's own call, so that
// it is as authenticated and as reachable as the gateways themselves and no port is opened.
//
// Each side has a local stream socket to its CRIU (PageTunnel) and a message stream to the other
// gateway in which page data is mixed with the migration's own messages (splitPages).
import type { Duplex } from "node:stream";

/** The largest piece of CRIU's stream sent as one message (gRPC's default limit is 4 MiB). */
const BATCH_BYTES = 1024 * 1024;

/** One gateway's end of the tunnel: the local socket to CRIU. */
export class PageTunnel {
  readonly #socket: Duplex;
  readonly #send: (data: Uint8Array) => Promise<void>;
  /** Resolves when CRIU's side closed the connection (or it failed). */
  readonly closed: Promise<void>;
  /** Resolves when the other side's CRIU has closed its end. */
  readonly remoteEnded: Promise<void>;
  #remoteEnded: () => void = () => undefined;
  #held = false;
  #flush: () => void = () => undefined;
  /** Bytes CRIU wrote, sent to the other side. */
  sent = 0;

  /**
   * `send` carries what CRIU writes to the other gateway. While one piece is on its way, what CRIU
   * writes meanwhile is gathered into the next (up to BATCH_BYTES, beyond which the socket waits):
   * a page fault's answer goes out at once, a stream of pages in large messages. `watch.read`
   * sees what CRIU writes as it comes; `watch.sent` is told the total after each piece.
   */
  constructor(
    socket: Duplex,
    send: (data: Uint8Array) => Promise<void>,
    watch: { read?: (data: Uint8Array) => void; sent?: (total: number) => void } = {},
  ) {
    this.#socket = socket;
    this.#send = send;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    this.remoteEnded = new Promise((resolve) => {
      this.#remoteEnded = resolve;
    });
    socket.on("error", () => undefined);
    let gathered: Buffer[] = [];
    let gatheredBytes = 0;
    let sending = false;
    let ended = false;
    const flush = () => {
      if (sending || this.#held) return;
      if (gatheredBytes === 0) {
        // The other side's CRIU must read end-of-file too.
        if (ended) this.#send(new Uint8Array(0)).catch(() => undefined);
        return;
      }
      const piece = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, gatheredBytes);
      gathered = [];
      gatheredBytes = 0;
      sending = true;
      socket.resume();
      this.#send(piece).then(
        () => {
          sending = false;
          this.sent += piece.length;
          watch.sent?.(this.sent);
          flush();
        },
        // The call is gone: so is the connection CRIU was promised.
        () => socket.destroy(),
      );
    };
    this.#flush = flush;
    socket.on("data", (data: Buffer) => {
      watch.read?.(data);
      gathered.push(data);
      gatheredBytes += data.length;
      if (gatheredBytes >= BATCH_BYTES) socket.pause();
      flush();
    });
    // CRIU closed its end (it finished), or the connection broke (it died: then no 'end' comes).
    const onEnd = () => {
      if (ended) return;
      ended = true;
      flush();
    };
    socket.once("end", onEnd);
    socket.once("close", onEnd);
  }

  /**
   * Writes what the other side's CRIU sent; resolves once the socket can take more. Empty data
   * means the other side's CRIU closed its end: so does this one, for writing.
   */
  async deliver(data: Uint8Array): Promise<void> {
    if (this.#socket.destroyed) throw new Error("CRIU's end of the page server connection is closed");
    if (data.length === 0) {
      this.#remoteEnded();
      this.#socket.end();
      return;
    }
    if (this.#socket.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.#socket.off("drain", done);
        this.#socket.off("close", closed);
        if (err) reject(err);
        else resolve();
      };
      const closed = () => done(new Error("CRIU's end of the page server connection closed"));
      this.#socket.once("drain", done);
      this.#socket.once("close", closed);
    });
  }

  /**
   * Holds what CRIU writes here (it waits in the socket) until `release`: for a moment when the
   * call must carry another message without queueing it behind a stream of pages.
   */
  hold(): void {
    this.#held = true;
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#flush();
  }

  /** Ends the connection: CRIU reads end-of-file. */
  close(): void {
    this.#socket.destroy();
  }
}

/** Page data among a stream's messages. */
export interface PageData {
  kind: "pages";
  data: Uint8Array;
}

/** The other messages of a stream whose page data is taken out and delivered as it comes. */
export interface ControlMessages<T> {
  /** The next message that is not page data; undefined once the stream has ended. */
  next(): Promise<T | undefined>;
  /** Settles when the stream ends: resolves on a normal end, rejects with the stream's failure. */
  readonly ended: Promise<void>;
}

/**
 * Reads `next` in the background from now on: page data goes to `deliver`, everything else waits
 * for the caller's `next()`; the next message is read only once the last was delivered or taken.
 */
export function splitPages<M extends { kind: string }>(
  next: () => Promise<M | undefined>,
  deliver: (data: Uint8Array) => Promise<void>,
): ControlMessages<Exclude<M, PageData>> {
  type T = Exclude<M, PageData>;
  const queued: T[] = [];
  let waiting: (() => void) | undefined;
  let taken: (() => void) | undefined;
  let end: { error?: unknown } | undefined;
  const wake = () => {
    waiting?.();
    waiting = undefined;
  };
  const ended = (async () => {
    for (;;) {
      const message = await next();
      if (message === undefined) return;
      if (isPages(message)) await deliver(message.data);
      else {
        queued.push(message as T);
        wake();
        // Paced by the caller: the next message is read once this one has been taken.
        await new Promise<void>((resolve) => {
          taken = resolve;
        });
      }
    }
  })().then(
    () => {
      end = {};
      wake();
    },
    (error: unknown) => {
      end = { error };
      wake();
      throw error;
    },
  );
  ended.catch(() => undefined);
  return {
    ended,
    async next() {
      for (;;) {
        const message = queued.shift();
        if (message !== undefined) {
          taken?.();
          taken = undefined;
          return message;
        }
        if (end) {
          if (end.error !== undefined) throw end.error;
          return undefined;
        }
        await new Promise<void>((resolve) => {
          waiting = resolve;
        });
      }
    },
  };
}

function isPages(message: { kind: string }): message is PageData {
  return message.kind === "pages";
}
