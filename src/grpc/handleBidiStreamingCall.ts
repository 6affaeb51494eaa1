// grpc-js glue for bidirectional calls: the client's messages as an async iterable (the first one
// apart, since the call is judged by it), the pipeline's responses written, paced, then ended.
import type { handleBidiStreamingCall as GrpcBidiHandler, ServerDuplexStream } from "@grpc/grpc-js";
import { AsyncQueue } from "./asyncQueue.js";
import type { CallHandler } from "./callContext.js";
import { callSignal } from "./callSignal.js";
import { streamResponses } from "./streamResponses.js";

/** `empty` stands for the first message of a stream that ended before sending one. */
export function handleBidiStreamingCall<Req, Res>(
  method: string,
  handler: CallHandler<Req, Res>,
  empty: Req,
  onInternal: (cause: unknown) => void,
): GrpcBidiHandler<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>) => {
    const startedNs = process.hrtime.bigint();
    const { signal, dispose } = callSignal(call, ["close", "error"]);
    // Not paused when unread: a paused HTTP/2 stream holds its data in the connection's flow
    // control window, which then stalls every other call on the connection.
    const incoming = new AsyncQueue<Req>();
    call.on("data", (message: Req) => incoming.push(message));
    // A client that stops sending, or is gone, has nothing more to say.
    for (const event of ["end", "error", "close", "cancelled"]) call.on(event, () => incoming.end());
    const context = { method, signal, transport: call, startedNs, record: {} };
    const responses = (async function* () {
      const messages = incoming[Symbol.asyncIterator]();
      const first = await messages.next();
      yield* handler({ first: first.done ? empty : first.value, rest: rest(messages) }, context);
    })();
    void streamResponses(call, responses, signal, dispose, onInternal);
  };
}

async function* rest<Req>(messages: AsyncIterator<Req>): AsyncGenerator<Req, void, undefined> {
  for (let next = await messages.next(); !next.done; next = await messages.next()) yield next.value;
}
