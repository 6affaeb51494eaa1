// Streams that arrive together are handed to grpc-js one per event-loop turn, in order; one that is
// gone by its turn is not handed over, and one that errs while it waits throws nothing.
import { EventEmitter } from "node:events";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Server } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { spreadStreams, takeStreamsInTurns } from "../../src/grpc/streamTurns.js";

class FakeStream extends EventEmitter {
  destroyed = false;
  readableEnded = false;
  constructor(readonly id: number) {
    super();
  }
}

/** An HTTP/2 server as grpc-js leaves it: one "stream" listener, which records what it is handed. */
function serverWithGrpcListener(order: (number | string)[] = []) {
  const http2Server = new EventEmitter();
  const handed: { id: number; headers: unknown }[] = [];
  http2Server.on("stream", (stream: FakeStream, headers: unknown) => {
    handed.push({ id: stream.id, headers });
    order.push(stream.id);
  });
  spreadStreams(http2Server);
  return { http2Server, handed };
}

describe("streams that arrive together", () => {
  it("are handed over one per turn, first come first served, with what came with them", async () => {
    const order: (number | string)[] = [];
    const { http2Server, handed } = serverWithGrpcListener(order);
    for (let id = 1; id <= 3; id++) http2Server.emit("stream", new FakeStream(id), { ":path": `/m${id}` });
    expect(order).toEqual([1]);
    // Other work queued meanwhile runs between two of them: the loop is not held for all.
    setImmediate(() => order.push("other work"));
    while (handed.length < 3) await nextTurn();
    expect(order).toEqual([1, 2, "other work", 3]);
    expect(handed).toEqual([
      { id: 1, headers: { ":path": "/m1" } },
      { id: 2, headers: { ":path": "/m2" } },
      { id: 3, headers: { ":path": "/m3" } },
    ]);
    await nextTurn();
  });

  it("are not handed over when gone by their turn, and an error while they wait throws nothing", async () => {
    const { http2Server, handed } = serverWithGrpcListener();
    const first = new FakeStream(1);
    const reset = new FakeStream(2);
    const third = new FakeStream(3);
    for (const stream of [first, reset, third]) http2Server.emit("stream", stream, {});
    reset.emit("error", new Error("stream reset by the client"));
    reset.destroyed = true;
    for (let turn = 0; turn < 4; turn++) await nextTurn();
    expect(handed.map((h) => h.id)).toEqual([1, 3]);
  });

  it("that ended before their turn, with nothing sent, are ended again once grpc-js listens", async () => {
    const http2Server = new EventEmitter();
    const halfClosed: number[] = [];
    // Like grpc-js: the client's half-close is known from "end" alone.
    http2Server.on("stream", (stream: FakeStream) => stream.on("end", () => halfClosed.push(stream.id)));
    spreadStreams(http2Server);
    const first = new FakeStream(1);
    const empty = new FakeStream(2);
    for (const stream of [first, empty]) http2Server.emit("stream", stream, {});
    // node:http2 ends an empty readable side at once, before anyone listens.
    empty.emit("end");
    empty.readableEnded = true;
    first.emit("end");
    first.readableEnded = true;
    await nextTurn();
    await nextTurn();
    expect(halfClosed).toEqual([1, 2]);
  });

  it("are taken in turns on every HTTP/2 server a grpc-js server makes", async () => {
    const server = new Server();
    expect(takeStreamsInTurns(server)).toBe(true);
    // grpc-js registers the servers it creates in this map (after adding its "stream" listener).
    const servers = (server as unknown as { http2Servers: Map<EventEmitter, unknown> }).http2Servers;
    const http2Server = new EventEmitter();
    const handed: number[] = [];
    http2Server.on("stream", (stream: FakeStream) => handed.push(stream.id));
    servers.set(http2Server, {});
    http2Server.emit("stream", new FakeStream(1), {});
    http2Server.emit("stream", new FakeStream(2), {});
    expect(handed).toEqual([1]);
    await nextTurn();
    await nextTurn();
    expect(handed).toEqual([1, 2]);
    servers.delete(http2Server);
  });
});
