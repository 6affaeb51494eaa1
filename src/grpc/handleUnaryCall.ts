// grpc-js glue for unary calls: the pipeline's one response, or its error as a status.
import type { handleUnaryCall as GrpcUnaryHandler, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { CallHandler } from "./callContext.js";
import { callSignal } from "./callSignal.js";
import { startInTurn } from "./callTurns.js";
import { toServiceError } from "./errorStatus.js";
import { noMessages } from "./noMessages.js";

/** Runs `handler` to its end (so its audit line is written before the answer), then answers. */
export function handleUnaryCall<Req, Res>(
  method: string,
  handler: CallHandler<Req, Res>,
  onInternal: (cause: unknown) => void,
): GrpcUnaryHandler<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    // Only the clock is read on arrival: every call of a burst arrives in one task, so whatever
    // else it needs is made in its own turn (a call cancelled while it waited starts cancelled).
    const startedNs = process.hrtime.bigint();
    startInTurn(() => run(call, callback, startedNs));
  };

  function run(call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, startedNs: bigint): void {
    const { signal, dispose } = callSignal(call);
    const context = { method, signal, transport: call, startedNs, record: {} };
    onlyResponse(handler({ first: call.request, rest: noMessages() }, context)).then(
      (response) => {
        dispose();
        callback(null, response);
      },
      (err: unknown) => {
        dispose();
        callback(toServiceError(err, onInternal), null);
      },
    );
  }
}

async function onlyResponse<Res>(responses: AsyncIterable<Res>): Promise<Res> {
  let only: { value: Res } | undefined;
  for await (const value of responses) {
    if (only) throw new Error("a unary handler produced more than one response");
    only = { value };
  }
  if (!only) throw new Error("a unary handler produced no response");
  return only.value;
}
