// Writes to a grpc-js stream with at most a few messages not yet taken by HTTP/2. grpc-js's
// Writable would queue without limit behind a slow reader; a transfer instead waits here, so
// a checkpoint of any size costs a few chunks of memory. The counts are kept for tests and
// benchmarks, which check the bound rather than timings.
import type { Writable } from "node:stream";

/** Chunks of a transfer one stream may have written and not yet flushed. */
export const MAX_IN_FLIGHT = 4;

/** Buffered-chunk counters of every transfer stream of a gateway. */
export class TransferStats {
  /** Chunks written and not yet flushed, or received and not yet written to disk, now. */
  buffered = 0;
  /** The most `buffered` ever was. */
  maxBuffered = 0;
  /** The most one stream ever had in flight. */
  maxPerStream = 0;

  add(n: number): void {
    this.buffered += n;
    if (this.buffered > this.maxBuffered) this.maxBuffered = this.buffered;
  }
}

export class BoundedWriter {
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #failure: unknown;

  constructor(
    private readonly stream: Pick<Writable, "write">,
    private readonly stats: TransferStats,
    private readonly limit = MAX_IN_FLIGHT,
  ) {}

  /**
   * Writes a message, first waiting while `limit` are in flight. Rejects once `fail` was called.
   * `flushed` is called once the stream has taken the message's bytes (never after `fail`).
   */
  async write(message: unknown, flushed?: () => void): Promise<void> {
    while (this.#inFlight >= this.limit) {
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    if (this.#failure !== undefined) throw this.#failure;
    this.#inFlight++;
    this.stats.add(1);
    if (this.#inFlight > this.stats.maxPerStream) this.stats.maxPerStream = this.#inFlight;
    this.stream.write(message, () => {
      // After fail() the counts were already taken back.
      if (this.#failure !== undefined) return;
      flushed?.();
      this.#inFlight--;
      this.stats.add(-1);
      this.#poke();
    });
  }

  /** Waits until everything written was flushed. */
  async drain(): Promise<void> {
    while (this.#inFlight > 0) {
      if (this.#failure !== undefined) throw this.#failure;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Ends waiting: the stream failed or was cancelled. What is in flight is forgotten. */
  fail(reason: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = reason;
    this.stats.add(-this.#inFlight);
    this.#inFlight = 0;
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
