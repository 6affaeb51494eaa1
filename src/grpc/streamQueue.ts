// A grpc-js stream read one message at a time, for protocols that alternate turns: next()
// resolves with the next message, undefined at the end, or rejects with the stream's error.
import type { Readable, Writable } from "node:stream";

export class StreamQueue<T> {
  readonly #items: T[] = [];
  readonly #waiting: { resolve(item: T | undefined): void; reject(err: unknown): void }[] = [];
  #ended = false;
  #error: unknown;

  constructor(
    stream: Readable,
    decode: (raw: unknown) => T = (raw) => raw as T,
    /** What a stream error becomes for the reader (a client call's: the peer's status). */
    mapError: (err: unknown) => unknown = (err) => err,
  ) {
    stream.on("data", (raw: unknown) => {
      let item: T;
      try {
        item = decode(raw);
      } catch (err) {
        this.fail(err);
        return;
      }
      const waiter = this.#waiting.shift();
      if (waiter) waiter.resolve(item);
      else this.#items.push(item);
    });
    stream.on("end", () => this.#end());
    stream.on("error", (err: unknown) => this.fail(mapError(err)));
  }

  next(): Promise<T | undefined> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Ends the queue with an error: waiting and later next() calls reject with it. */
  fail(err: unknown): void {
    if (this.#ended) return;
    this.#error = err;
    this.#ended = true;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(err);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const waiter of this.#waiting.splice(0)) waiter.resolve(undefined);
  }
}

/**
 * Writes honouring backpressure: resolves once the stream can take more, rejects when it closes
 * or fails first (a call that died never drains).
 */
export function writeWithDrain(stream: Writable, message: unknown): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.reject(new Error("the stream has closed"));
  if (stream.write(message)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (err?: unknown) => {
      stream.off("drain", onDrain);
      stream.off("close", onClose);
      stream.off("error", onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = () => settle();
    const onClose = (err?: unknown) => settle(err ?? new Error("the stream closed"));
    stream.on("drain", onDrain);
    stream.on("close", onClose);
    stream.on("error", onClose);
  });
}
