// A Subscribe client on bare HTTP/2 with a tiny flow-control window that can stop reading for
// real: grpc-js clients keep draining the connection even when paused, so they cannot stall.
import http2 from "node:http2";
import { connect } from "node:net";
import { type Event, SubscribeRequest, SubscribeResponse } from "../../gen/criu/gateway/v1/gateway.js";

export interface RawSubscriber {
  events: Event[];
  /** Stops reading: the server soon can send nothing more. */
  pause(): void;
  resume(): void;
  close(): void;
}

export function rawSubscriber(socketPath: string, windowBytes = 512): RawSubscriber {
  // Everything, unfiltered: the busiest stream there is.
  const session = http2.connect("http://localhost", {
    createConnection: () => connect(socketPath),
    settings: { initialWindowSize: windowBytes },
  });
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/criu.gateway.v1.CriuService/Subscribe",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => {});
  const body = SubscribeRequest.encode({ kinds: [], pid: 0, checkpointId: "" }).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);
  stream.end(frame);

  const events: Event[] = [];
  let pending = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      const message = SubscribeResponse.decode(pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
      if (message.event) events.push(message.event);
    }
  });
  return {
    events,
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    close: () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
}
