// The concurrency limiter behind the policy's limits (operations, subscribers).
import { GatewayError } from "../domain/errors.js";

/** How a refusal reads: when all slots are taken, and when the key's own are. */
export interface SlotRefusal {
  total(n: number): string;
  own(n: number): string;
}

/** Counted slots per key and in total, each limit optional; a slot is given back once. */
export class Slots {
  readonly #byKey = new Map<string, number>();
  #total = 0;

  /** Takes a slot, or throws RESOURCE_EXHAUSTED; returns the function that gives it back. */
  take(key: string, perKey: number | undefined, total: number | undefined, refusal: SlotRefusal): () => void {
    const mine = this.#byKey.get(key) ?? 0;
    if (total !== undefined && this.#total >= total) {
      throw new GatewayError("RESOURCE_EXHAUSTED", refusal.total(this.#total));
    }
    if (perKey !== undefined && mine >= perKey)
      throw new GatewayError("RESOURCE_EXHAUSTED", refusal.own(mine));
    this.#byKey.set(key, mine + 1);
    this.#total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#total--;
      const left = (this.#byKey.get(key) ?? 1) - 1;
      if (left === 0) this.#byKey.delete(key);
      else this.#byKey.set(key, left);
    };
  }
}
