// HTTP/2 flow-control windows wide enough for checkpoint images. With HTTP/2's default 64 KiB
// windows a sender may have 64 KiB unacknowledged, so a 1 MiB chunk waits for sixteen window
// updates, each a round trip through both gateways' event loops: images moved at ~120 MB/s over
// a unix socket whatever else was done. With a window of a few chunks the sender keeps writing
// while the receiver works; the receiver still paces it (a paused stream acknowledges nothing),
// and what it may have to hold for one stream stays the window.
import type { ChannelOptions, Server } from "@grpc/grpc-js";

/** What one stream may send ahead of its receiver: four 1 MiB chunks. */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;

/** What one connection may send ahead, for all its streams: two transfers at full speed. */
export const CONNECTION_WINDOW_BYTES = 2 * STREAM_WINDOW_BYTES;

/**
 * For a client that receives images (grpc-js applies it to the stream and connection windows
 * both); also sent by a gateway connecting to another, where it costs nothing.
 */
export const transferChannelOptions: ChannelOptions = {
  "grpc-node.flow_control_window": STREAM_WINDOW_BYTES,
};

interface ServerInternals {
  commonServerOptions?: { settings?: Record<string, unknown> };
  http2Servers?: Map<unknown, unknown>;
}

interface SessionLike {
  setLocalWindowSize(size: number): void;
}

/**
 * Gives the connections of `server` (made after this call) the windows above. grpc-js has no
 * server option for them, so the settings it passes to node:http2 are extended and each HTTP/2
 * server it creates widens its sessions' connection windows. Returns false, changing nothing,
 * when grpc-js no longer has the fields this relies on (a test checks the windows on the wire).
 */
export function widenServerWindows(server: Server): boolean {
  const internals = server as unknown as ServerInternals;
  const options = internals.commonServerOptions;
  const servers = internals.http2Servers;
  if (!options || !(servers instanceof Map)) return false;
  options.settings = { ...options.settings, initialWindowSize: STREAM_WINDOW_BYTES };
  const set = servers.set.bind(servers);
  servers.set = (http2Server: unknown, info: unknown) => {
    if (!servers.has(http2Server)) {
      (http2Server as { on(event: "session", listener: (s: SessionLike) => void): void }).on(
        "session",
        widenConnection,
      );
    }
    return set(http2Server, info);
  };
  return true;
}

function widenConnection(session: SessionLike): void {
  try {
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
  } catch {
    // A session already closing: it has no window to widen.
  }
}
