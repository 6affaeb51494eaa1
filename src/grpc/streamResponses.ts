// A streaming call's responses written to grpc-js, paced by the client's reading, and the stream
// ended: with OK, or with the handler's error as a status.
import { toServiceError } from "./errorStatus.js";

/**
 * Messages written and not yet flushed, per call: beyond that the producer (a subscription's
 * bounded queue, a Session's callbacks) waits, and a subscription counts what it must drop.
 */
const IN_FLIGHT = 16;

/** What of a grpc-js server stream the writer uses. */
interface ResponseStream<Res> {
  write(message: Res, flushed: () => void): unknown;
  end(): unknown;
  emit(event: "error", error: unknown): boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}

/**
 * Writes every response the handler produces, then ends the stream; `dispose` runs first, so the
 * call's own ending is not taken for the client's going. Once the client is gone (`signal`
 * aborted) the rest are taken and dropped, so that the handler runs to its end and its clean-up
 * and audit happen.
 */
export async function streamResponses<Res>(
  call: ResponseStream<Res>,
  responses: AsyncIterable<Res>,
  signal: AbortSignal,
  dispose: () => void,
  onInternal: (cause: unknown) => void,
): Promise<void> {
  try {
    await writeAll(call, responses, signal);
    dispose();
    if (!call.destroyed && !call.writableEnded) call.end();
  } catch (err) {
    dispose();
    if (!call.destroyed) call.emit("error", toServiceError(err, onInternal));
  }
}

async function writeAll<Res>(
  call: ResponseStream<Res>,
  responses: AsyncIterable<Res>,
  signal: AbortSignal,
): Promise<void> {
  let inFlight = 0;
  let wake: () => void = () => {};
  const onAbort = () => wake();
  signal.addEventListener("abort", onAbort);
  try {
    for await (const message of responses) {
      if (signal.aborted || call.destroyed || call.writableEnded) continue;
      inFlight++;
      call.write(message, () => {
        inFlight--;
        wake();
      });
      while (inFlight >= IN_FLIGHT && !signal.aborted && !call.destroyed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
