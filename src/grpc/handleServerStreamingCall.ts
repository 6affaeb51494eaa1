// grpc-js glue for server-streaming calls: the pipeline's responses written, paced, then ended.
import type {
  handleServerStreamingCall as GrpcServerStreamingHandler,
  ServerWritableStream,
} from "@grpc/grpc-js";
import type { CallHandler } from "./callContext.js";
import { callSignal } from "./callSignal.js";
import { noMessages } from "./noMessages.js";
import { streamResponses } from "./streamResponses.js";

export function handleServerStreamingCall<Req, Res>(
  method: string,
  handler: CallHandler<Req, Res>,
  onInternal: (cause: unknown) => void,
): GrpcServerStreamingHandler<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const startedNs = process.hrtime.bigint();
    const { signal, dispose } = callSignal(call, ["close", "error"]);
    const context = { method, signal, transport: call, startedNs, record: {} };
    const responses = handler({ first: call.request, rest: noMessages() }, context);
    void streamResponses(call, responses, signal, dispose, onInternal);
  };
}
