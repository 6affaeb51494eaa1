// Streams that arrive in one read are handed to grpc-js one per event-loop turn. node:http2 emits
// every stream whose HEADERS came in one read (100 concurrent calls from one client arrive
// together) in a single task, and grpc-js takes each in at once: its call objects, metadata,
// deserializer and handler, ~30 µs a stream once its code is optimized and several times that
// before. Profiled under bursts of 100 VERSIONs, that task was the event loop's longest, its p99
// delay. Handed over one per turn (callTurns.ts), a burst's streams are taken in with timers and
// I/O served between them; what node:http2 received for a stream meanwhile waits in the stream.
import type { EventEmitter } from "node:events";
import type { Server } from "@grpc/grpc-js";
import { startInTurn } from "./callTurns.js";

interface ServerInternals {
  http2Servers?: Map<unknown, unknown>;
}

/** The part of a node:http2 stream this module looks at. */
interface StreamLike {
  readonly destroyed: boolean;
  /** Whether its "end" was emitted: the client half-closed and everything it sent was read. */
  readonly readableEnded: boolean;
  once(event: "error", listener: () => void): unknown;
  emit(event: "end"): boolean;
}

/**
 * Makes every HTTP/2 server that `server` creates from now on hand its streams to grpc-js one per
 * turn. grpc-js has no option for it, so the map it keeps its HTTP/2 servers in is watched, as
 * widenServerWindows does. Returns false, changing nothing, when grpc-js no longer has that map.
 */
export function takeStreamsInTurns(server: Server): boolean {
  const servers = (server as unknown as ServerInternals).http2Servers;
  if (!(servers instanceof Map)) return false;
  const set = servers.set.bind(servers);
  servers.set = (http2Server: unknown, info: unknown) => {
    if (!servers.has(http2Server)) spreadStreams(http2Server as EventEmitter);
    return set(http2Server, info);
  };
  return true;
}

/**
 * Puts the "stream" listeners already on `http2Server` (grpc-js's) behind startInTurn. A stream
 * that is gone by its turn (its client reset it, its connection closed) is not handed over; one
 * that errs while it waits has a listener, so that its error is not thrown (its "close" follows).
 */
export function spreadStreams(http2Server: EventEmitter): void {
  for (const listener of http2Server.listeners("stream")) {
    http2Server.removeListener("stream", listener as (...args: unknown[]) => void);
    http2Server.on("stream", (stream: StreamLike, ...rest: unknown[]) => {
      stream.once("error", ignore);
      startInTurn(() => handOver(stream, () => listener.call(http2Server, stream, ...rest)));
    });
  }
}

/**
 * Hands `stream` to grpc-js's listener unless it is gone. A stream whose client half-closed
 * without sending a message (a streaming call with none) has emitted its "end" already, to no
 * one: node:http2 ends an empty readable side at once, paused or not. grpc-js learns of the
 * half-close only from that event, so it is emitted again once grpc-js listens.
 */
function handOver(stream: StreamLike, listen: () => void): void {
  if (stream.destroyed) return;
  const endedUnheard = stream.readableEnded;
  listen();
  if (endedUnheard && !stream.destroyed) stream.emit("end");
}

function ignore(): void {}
