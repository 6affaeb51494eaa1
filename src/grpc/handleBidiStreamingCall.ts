// grpc-js glue for bidirectional calls: the client's messages as an async iterable (the first one
// apart, since the call is judged by it), the pipeline's responses written, paced, then ended.
import type { handleBidiStreamingCall as GrpcBidiHandler, ServerDuplexStream } from "@grpc/grpc-js";
import { AsyncQueue } from "./asyncQueue.js";
import type { CallHandler } from "./callContext.js";
import { callSignal } from "./callSignal.js";
import { streamResponses } from "./streamResponses.js";

/**
 * `empty` stands for the first message of a stream that ended before sending one. `pace`, when
 * given, bounds the messages held unread: the stream is paused at that many and resumed at half.
 */
export function handleBidiStreamingCall<Req, Res>(
  method: string,
  handler: CallHandler<Req, Res>,
  empty: Req,
  onInternal: (cause: unknown) => void,
  pace?: number,
): GrpcBidiHandler<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>) => {
    const startedNs = process.hrtime.bigint();
    const { signal, dispose } = callSignal(call, ["close", "error"]);
    // Not paused when unread, unless paced: a paused HTTP/2 stream holds its data in the
    // connection's flow control window, which then stalls every other call on the connection.
    // A paced call is one whose client opens a connection for it alone (AcceptMigration).
    const incoming = new AsyncQueue<Req>();
    let paused = false;
    call.on("data", (message: Req) => {
      incoming.push(message);
      if (pace !== undefined && !paused && incoming.length >= pace) {
        paused = true;
        call.pause();
      }
    });
    const taken = () => {
      if (paused && incoming.length <= (pace ?? 0) / 2) {
        paused = false;
        call.resume();
      }
    };
    // A client that stops sending, or is gone, has nothing more to say.
    for (const event of ["end", "error", "close", "cancelled"]) call.on(event, () => incoming.end());
    const context = { method, signal, transport: call, startedNs, record: {} };
    const responses = (async function* () {
      const messages = incoming[Symbol.asyncIterator]();
      const first = await messages.next();
      taken();
      yield* handler({ first: first.done ? empty : first.value, rest: rest(messages, taken) }, context);
    })();
    void streamResponses(call, responses, signal, dispose, onInternal);
  };
}

async function* rest<Req>(
  messages: AsyncIterator<Req>,
  taken: () => void,
): AsyncGenerator<Req, void, undefined> {
  for (let next = await messages.next(); !next.done; next = await messages.next()) {
    taken();
    yield next.value;
  }
}
