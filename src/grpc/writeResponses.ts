// Writing a call's responses to a grpc-js stream, paced by the client's reading.
import type { ServerWritableStream } from "@grpc/grpc-js";

/**
 * Messages written and not yet flushed, per call: beyond that the producer (a subscription's
 * bounded queue, a Session's callbacks) waits, and a subscription counts what it must drop.
 */
const IN_FLIGHT = 16;

type Writable<Res> = Pick<ServerWritableStream<unknown, Res>, "write" | "destroyed" | "writableEnded">;

/**
 * Writes every response the handler produces. Once the client is gone (`signal` aborted) the rest
 * are taken and dropped, so that the handler runs to its end and its clean-up and audit happen.
 */
export async function writeResponses<Res>(
  call: Writable<Res>,
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
