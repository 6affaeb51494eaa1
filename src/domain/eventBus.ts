// Operation events for observers. Publishing never waits: each subscriber has a bounded queue,
// and a subscriber that falls behind loses events (counted, then reported in one EventsLost
// marker) instead of slowing the operation that publishes them.
import type { DumpStatistics, RestoreStatistics } from "../../gen/criu/gateway/v1/gateway.js";
import type { ErrorCode } from "./errors.js";

export type OperationKind =
  | "dump"
  | "restore"
  | "check"
  | "feature-check"
  | "version"
  | "pre-dump"
  | "wait-pid"
  | "cpuinfo-dump"
  | "cpuinfo-check"
  | "page-server"
  | "iterative-dump"
  | "export"
  | "import"
  | "push";

export type AnsweredBy = "caller" | "gateway" | "timeout" | "cancelled";

export type EventPayload =
  | {
      type: "started";
      kind: OperationKind;
      caller: string;
      pid: number;
      checkpointId: string;
      interactive: boolean;
    }
  | { type: "callback"; sequence: number; script: string; pid: number | undefined }
  | { type: "callback-answered"; sequence: number; script: string; success: boolean; answeredBy: AnsweredBy }
  | {
      type: "finished";
      code: ErrorCode | "OK";
      message: string;
      durationMs: number;
      restoredPid: number;
      /** CRIU's own figures of a successful dump or restore, for the gateway's metrics. */
      dumpStatistics?: DumpStatistics | undefined;
      restoreStatistics?: RestoreStatistics | undefined;
    }
  | { type: "progress"; bytesDone: number; bytesTotal: number };

export interface GatewayEvent {
  operationId: string;
  time: Date;
  payload: EventPayload;
}

/** What a subscriber receives: an event, or how many events it lost just before the next one. */
export type Delivery = { event: GatewayEvent } | { lost: number };

export interface EventFilter {
  /** Empty: every kind. */
  kinds: ReadonlySet<OperationKind>;
  /** 0: any pid. */
  pid: number;
  /** "": any checkpoint. */
  checkpointId: string;
  /**
   * What the subscriber may see, asked of every operation with its checkpoint id ("" for
   * operations without a checkpoint: version, check, wait-pid). Absent: all.
   */
  visible?: (checkpointId: string) => boolean;
}

interface OperationFacts {
  kind: OperationKind;
  pid: number;
  checkpointId: string;
}

export class Subscription {
  readonly #queue: Delivery[] = [];
  #pendingLost = 0;
  #totalLost = 0;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(
    readonly filter: EventFilter,
    readonly capacity: number,
    private readonly onClose: (s: Subscription) => void,
  ) {}

  /** Events dropped so far because this subscriber fell behind. */
  get lost(): number {
    return this.#totalLost;
  }

  /** Called by the bus; never blocks. False when the event was dropped because the queue is full. */
  offer(event: GatewayEvent): boolean {
    if (this.#closed) return true;
    if (this.#queue.length >= this.capacity) {
      this.#pendingLost++;
      this.#totalLost++;
      return false;
    }
    if (this.#pendingLost > 0) {
      this.#queue.push({ lost: this.#pendingLost });
      this.#pendingLost = 0;
    }
    this.#queue.push({ event });
    this.#poke();
    return true;
  }

  /** The next delivery, or undefined once the subscription is closed. */
  async next(): Promise<Delivery | undefined> {
    for (;;) {
      const item = this.#queue.shift();
      if (item) return item;
      if (this.#pendingLost > 0) {
        const lost = this.#pendingLost;
        this.#pendingLost = 0;
        return { lost };
      }
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this);
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

export class EventBus {
  readonly #subscriptions = new Set<Subscription>();
  /** What filters need to know of operations in flight (callback events carry no pid). */
  readonly #operations = new Map<string, OperationFacts>();
  /** The gateway's own observers (metrics): called for every event, synchronously. */
  readonly #observers = new Set<(event: GatewayEvent) => void>();
  #dropped = 0;

  constructor(readonly capacityPerSubscriber = 1024) {}

  /** Events dropped so far, over every subscriber, because a subscriber fell behind. */
  get droppedTotal(): number {
    return this.#dropped;
  }

  /** Calls `observer` with every event from now on, before subscribers get it; returns the way to stop. */
  observe(observer: (event: GatewayEvent) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  get subscriberCount(): number {
    return this.#subscriptions.size;
  }

  subscribe(filter: EventFilter): Subscription {
    const subscription = new Subscription(filter, this.capacityPerSubscriber, (s) =>
      this.#subscriptions.delete(s),
    );
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /** Ends every subscription (at shutdown): their streams end after what is queued. */
  closeAll(): void {
    for (const s of [...this.#subscriptions]) s.close();
  }

  publish(operationId: string, payload: EventPayload): void {
    if (payload.type === "started") {
      this.#operations.set(operationId, {
        kind: payload.kind,
        pid: payload.pid,
        checkpointId: payload.checkpointId,
      });
    }
    const facts = this.#operations.get(operationId);
    if (payload.type === "finished") this.#operations.delete(operationId);
    if (!facts) return;
    const event: GatewayEvent = { operationId, time: new Date(), payload };
    for (const observe of this.#observers) observe(event);
    for (const s of this.#subscriptions) {
      if (matches(s.filter, facts) && !s.offer(event)) this.#dropped++;
    }
  }
}

function matches(filter: EventFilter, facts: OperationFacts): boolean {
  if (filter.kinds.size > 0 && !filter.kinds.has(facts.kind)) return false;
  if (filter.pid !== 0 && filter.pid !== facts.pid) return false;
  if (filter.checkpointId !== "" && filter.checkpointId !== facts.checkpointId) return false;
  if (filter.visible && !filter.visible(facts.checkpointId)) return false;
  return true;
}
