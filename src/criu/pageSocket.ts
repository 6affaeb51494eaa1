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

export function pageSocketPair(): PageSocketPair {
  const { ours, theirs } = streamPair();
  let open = true;
  return {
    // Half-open: each direction ends on its own, as CRIU's do.
    socket: new Socket({ fd: ours, readable: true, writable: true, allowHalfOpen: true }),
    criuEnd: theirs,
    closeCriuEnd() {
      if (!open) return;
      open = false;
      closeFd(theirs);
    },
  };
}
