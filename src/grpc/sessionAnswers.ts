// The caller's side of a Session: questions put to it (CRIU's callbacks, an iterative dump's next
// step) and its answers matched to them as they arrive on the stream.
import type { NotifyCallback, SessionRequest, SessionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import type { DumpResult, NotifyAnswer } from "../domain/criuOperations.js";
import { GatewayError, invalidArgument } from "../domain/errors.js";
import { toCheckpoint } from "./apiMessages.js";

export class SessionAnswers {
  /** Callbacks put to the caller and not answered yet, by sequence. */
  readonly #waiting = new Map<number, (answer: NotifyAnswer) => void>();
  /** In an iterative dump, the pre-dump waiting for the caller's `next`. */
  #awaitingStep: ((finalDump: boolean | undefined) => void) | undefined;
  #inputEnded = false;

  /** `send` tells the caller; `signal` ends the session (cancellation, a protocol error). */
  constructor(
    private readonly send: (message: SessionResponse) => void,
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Takes the caller's messages after the start until its stream ends; throws INVALID_ARGUMENT at
   * the first one that answers nothing awaiting an answer.
   */
  async read(messages: AsyncIterable<SessionRequest>): Promise<void> {
    for await (const req of messages) this.#take(req);
    this.#inputEnded = true;
    // A caller that stopped sending can answer no more callbacks.
    for (const [sequence, answer] of this.#waiting) {
      this.#waiting.delete(sequence);
      answer({ success: false });
    }
    this.#awaitingStep?.(undefined);
  }

  #take(req: SessionRequest): void {
    if (req.notifyReply) {
      const answer = this.#waiting.get(req.notifyReply.sequence);
      if (!answer) {
        throw invalidArgument(
          `notify_reply for sequence ${req.notifyReply.sequence}, which is not awaiting an answer`,
        );
      }
      this.#waiting.delete(req.notifyReply.sequence);
      answer({ success: req.notifyReply.success, external: req.notifyReply.external });
      return;
    }
    if (req.next) {
      const step = this.#awaitingStep;
      if (!step)
        throw invalidArgument("next answers a pre_dump_result of an iterative dump; none is awaiting it");
      step(req.next.finalDump);
      return;
    }
    throw invalidArgument(
      "a session takes one start message, then only notify_reply (and, iterating, next) messages",
    );
  }

  /** Puts a callback to the caller; a caller that has stopped sending answers it with a failure. */
  ask(sequence: number, callback: NotifyCallback, signal: AbortSignal): Promise<NotifyAnswer> {
    return new Promise<NotifyAnswer>((resolve) => {
      if (this.#inputEnded || signal.aborted) {
        resolve({ success: false });
        return;
      }
      this.#waiting.set(sequence, resolve);
      // The answer may lose the race (timeout, cancellation): forget the question then.
      signal.addEventListener("abort", () => this.#waiting.delete(sequence), { once: true });
      this.send({ callback });
    });
  }

  /**
   * Reports a pre-dump and waits for the caller's `next`: true for the final dump. A caller that
   * goes away, stops sending or lets the timeout pass gets no further step: the session fails.
   */
  nextStep(preDump: DumpResult, timeoutMs: number): Promise<boolean> {
    const stopped = () => new GatewayError("CANCELLED", "the caller stopped before choosing the next step");
    return new Promise<boolean>((resolve, reject) => {
      const signal = this.signal;
      if (this.#inputEnded || signal.aborted) {
        reject(stopped());
        return;
      }
      const timer = setTimeout(() => {
        this.#awaitingStep = undefined;
        signal.removeEventListener("abort", onAbort);
        reject(
          new GatewayError(
            "DEADLINE_EXCEEDED",
            `no next message within ${timeoutMs} ms of the pre-dump; the iterative dump was abandoned`,
          ),
        );
      }, timeoutMs);
      const onAbort = () => settle(undefined);
      const settle = (finalDump: boolean | undefined) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#awaitingStep = undefined;
        if (finalDump === undefined) reject(stopped());
        else resolve(finalDump);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#awaitingStep = settle;
      this.send({
        preDumpResult: { checkpoint: toCheckpoint(preDump.checkpoint), statistics: preDump.statistics },
      });
    });
  }
}
