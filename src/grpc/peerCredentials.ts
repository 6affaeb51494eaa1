// SO_PEERCRED of an accepted unix connection, from the gateway's native addon (native/seqpacket.cc).
// The gRPC side loads the addon for this one call, so that it needs nothing of the CRIU side.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../packageRoot.js";

/** What the kernel recorded of a unix socket's peer when it connected (SO_PEERCRED). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const ADDON = join(packageRoot, "build", "Release", "seqpacket.node");

let native: { peerCredentials(fd: number): PeerCredentials } | undefined;

/** The peer credentials of a connected unix socket; throws when there are none. */
export function peerCredentials(fd: number): PeerCredentials {
  if (!native) {
    if (!existsSync(ADDON)) {
      throw new Error(
        "the native seqpacket addon is not built: run `npm run build:native` (npm start does it)",
      );
    }
    native = createRequire(import.meta.url)(ADDON) as typeof native;
  }
  return (native as NonNullable<typeof native>).peerCredentials(fd);
}
