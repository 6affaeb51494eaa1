// grpc-js glue for server-streaming calls: the pipeline's responses written, paced, then ended.
import type { handleServerStreamingCall, ServerWritableStream } from "@grpc/grpc-js";
import type { CallHandler } from "./callContext.js";
import { callSignal } from "./callSignal.js";
import { toServiceError } from "./errorStatus.js";
import { noMessages } from "./handleUnaryCall.js";
import { writeResponses } from "./writeResponses.js";

export function handleServerStreaming<Req, Res>(
  method: string,
  handler: CallHandler<Req, Res>,
  onInternal: (cause: unknown) => void,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const startedNs = process.hrtime.bigint();
    const { signal, dispose } = callSignal(call, ["close", "error"]);
    const context = { method, signal, transport: call, startedNs, record: {} };
    const responses = handler({ first: call.request, rest: noMessages() }, context);
    void endStream(call, writeResponses(call, responses, signal), dispose, onInternal);
  };
}

/** Ends the stream once the responses are written: with OK, or with the error's status. */
export async function endStream(
  call: {
    end(): void;
    emit(event: "error", error: unknown): boolean;
    destroyed: boolean;
    writableEnded: boolean;
  },
  written: Promise<void>,
  dispose: () => void,
  onInternal: (cause: unknown) => void,
): Promise<void> {
  try {
    await written;
    dispose();
    if (!call.destroyed && !call.writableEnded) call.end();
  } catch (err) {
    dispose();
    if (!call.destroyed) call.emit("error", toServiceError(err, onInternal));
  }
}
