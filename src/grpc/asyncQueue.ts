// An unbounded queue read as an async iterable: messages arriving on a stream before anyone reads
// them, or responses produced by callbacks for the writer to take in order.

export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #error: { cause: unknown } | undefined;
  #wake: (() => void) | undefined;

  get length(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#poke();
  }

  /** No more items; with an error, the reader gets it after the items already queued. */
  end(error?: { cause: unknown }): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#poke();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      if (this.#items.length > 0) {
        yield this.#items.shift() as T;
        continue;
      }
      if (this.#ended) {
        if (this.#error) throw this.#error.cause;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
