// The two ends of a CRIU page server connection that the gateway carries itself: CRIU (the
// dumping worker's page server, or the lazy-pages daemon) gets one end as an inherited
// descriptor; the gateway reads and writes the other as a Node stream. No TCP port is opened.
import { Socket } from "node:net";
import { closeFd, streamPair } from "./seqpacket.js";

export interface PageSocketPair {
  /** The gateway's end. */
  socket: Socket;
  /** CRIU's end, for a child's stdio; close it here once the child has it. */
  readonly criuEnd: number;
  /** Closes this process's copy of CRIU's end (idempotent), so that CRIU's exit ends `socket`. */
  closeCriuEnd(): void;
}

/** Our end of a page server connection, as a Node stream (it owns the descriptor from now on). */
export function pageSocketOf(fd: number): Socket {
  // Half-open: each direction ends on its own, as CRIU's do.
  return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
}

export function pageSocketPair(): PageSocketPair {
  const { ours, theirs } = streamPair();
  let open = true;
  return {
    socket: pageSocketOf(ours),
    criuEnd: theirs,
    closeCriuEnd() {
      if (!open) return;
      open = false;
      closeFd(theirs);
    },
  };
}
