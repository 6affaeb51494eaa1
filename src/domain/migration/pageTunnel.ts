// A post-copy migration carries CRIU's page server connection (the source's dumping CRIU serving
// memory, the target's lazy-pages daemon asking for it) inside the migration's own call, so that
// it is as authenticated and as reachable as the gateways themselves and no port is opened.
//
// Each side has a local stream socket to its CRIU (PageTunnel) and a message stream to the other
// gateway in which page data is mixed with the migration's own messages (splitPages).
import type { Duplex } from "node:stream";

/** One gateway's end of the tunnel: the local socket to CRIU. */
export class PageTunnel {
  readonly #socket: Duplex;
  readonly #send: (data: Uint8Array) => Promise<void>;
  /** Resolves when CRIU's side closed the connection (or it failed). */
  readonly closed: Promise<void>;
  /** Bytes CRIU wrote, sent to the other side. */
  sent = 0;

  /**
   * `send` carries what CRIU writes to the other gateway; the socket is read only as fast as
   * `send` resolves. `onSent` is told after each piece.
   */
  constructor(socket: Duplex, send: (data: Uint8Array) => Promise<void>, onSent?: (total: number) => void) {
    this.#socket = socket;
    this.#send = send;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
    socket.on("data", (data: Buffer) => {
      socket.pause();
      this.#send(data).then(
        () => {
          this.sent += data.length;
          onSent?.(this.sent);
          socket.resume();
        },
        // The call is gone: so is the connection CRIU was promised.
        () => socket.destroy(),
      );
    });
  }

  /** Writes what the other side's CRIU sent; resolves once the socket can take more. */
  async deliver(data: Uint8Array): Promise<void> {
    if (this.#socket.destroyed) throw new Error("CRIU's end of the page server connection is closed");
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
