// Unix socket listeners whose callers are known by the kernel's word (SO_PEERCRED). grpc-js binds
// unix sockets itself but never shows a handler the connection, so the gateway accepts them here,
// reads each peer's credentials, tags the socket with a name only this module gives out, and hands
// the connection to grpc-js. Handlers find the credentials again by the call's peer name.
import { promises as fs } from "node:fs";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { Server } from "@grpc/grpc-js";
import { ServerCredentials } from "@grpc/grpc-js";
import { type PeerCredentials, peerCredentials } from "../criu/seqpacket.js";
import type { Logger } from "../log.js";

const TAG_PREFIX = "unix-peer:";

/** Credentials of live unix connections, by the peer name their socket reports to grpc-js. */
export class UnixPeers {
  readonly #byTag = new Map<string, PeerCredentials>();
  #next = 0;

  /** Reads the socket's peer credentials and tags it; false when the kernel gives none. */
  adopt(socket: Socket): boolean {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== "number" || fd < 0) return false;
    let creds: PeerCredentials;
    try {
      creds = peerCredentials(fd);
    } catch {
      return false;
    }
    this.#next++;
    const tag = `${TAG_PREFIX}${this.#next}`;
    // A unix socket has no remote address of its own; grpc-js reports this one as the call's peer.
    Object.defineProperty(socket, "remoteAddress", { value: tag, configurable: true });
    this.#byTag.set(tag, creds);
    socket.once("close", () => this.#byTag.delete(tag));
    return true;
  }

  lookup(peer: string): PeerCredentials | undefined {
    return peer.startsWith(TAG_PREFIX) ? this.#byTag.get(peer) : undefined;
  }

  get size(): number {
    return this.#byTag.size;
  }
}

export interface UnixSocketSettings {
  mode: number;
  /** Owner and group of the socket file; unchanged (root's) when undefined. */
  uid: number | undefined;
  gid: number | undefined;
}

export interface UnixListener {
  /** Accepts no more connections; those open carry on (grpc-js drains them). */
  stopAccepting(): void;
  /** Ends the connections still open. */
  destroy(): void;
}

/**
 * Listens on a unix socket path with the given mode and owner, and feeds each connection whose
 * peer credentials can be read to the gRPC server. The socket file is created with the final mode
 * (umask set around bind), so there is no moment in which it is more open than configured.
 */
export async function listenUnix(
  server: Server,
  path: string,
  settings: UnixSocketSettings,
  peers: UnixPeers,
  logger: Logger,
): Promise<UnixListener> {
  const feeder = connectionFeeder(
    server,
    ServerCredentials.createInsecure(),
    unixAdmission(peers, logger, path),
  );
  const listener: NetServer = createServer({ allowHalfOpen: false, pauseOnConnect: false }, feeder.accept);
  await new Promise<void>((resolve, reject) => {
    const previous = process.umask(0o777 & ~settings.mode);
    listener.once("error", (err) => {
      process.umask(previous);
      reject(new Error(`cannot listen on unix:${path}: ${err.message}`));
    });
    listener.listen(path, () => {
      resolve();
    });
    process.umask(previous);
  });
  try {
    await fs.chmod(path, settings.mode);
    if (settings.uid !== undefined || settings.gid !== undefined) {
      await fs.chown(path, settings.uid ?? -1, settings.gid ?? -1);
    }
  } catch (err) {
    listener.close();
    throw new Error(`cannot set the owner or mode of unix:${path}: ${(err as Error).message}`);
  }
  return {
    stopAccepting() {
      listener.close();
    },
    destroy: feeder.destroy,
  };
}

/** Hands accepted connections to the gRPC server, and ends them all on `destroy`. */
export interface ConnectionFeeder {
  accept(socket: Socket): void;
  destroy(): void;
}

/**
 * Feeds connections that `admit` accepts to the gRPC server, through grpc-js's connection
 * injector with the given credentials (TLS is done on the injected socket).
 */
export function connectionFeeder(
  server: Server,
  credentials: ServerCredentials,
  admit: (socket: Socket) => boolean = () => true,
): ConnectionFeeder {
  const injector = server.createConnectionInjector(credentials);
  const sockets = new Set<Socket>();
  return {
    accept(socket) {
      if (!admit(socket)) {
        socket.destroy();
        return;
      }
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      injector.injectConnection(socket);
    },
    destroy() {
      injector.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Admits unix connections whose peer credentials the kernel gives, tagging them in `peers`. */
export function unixAdmission(peers: UnixPeers, logger: Logger, path: string): (socket: Socket) => boolean {
  return (socket) => {
    if (peers.adopt(socket)) return true;
    logger.log("warn", "unix connection refused: no peer credentials", { path });
    return false;
  };
}
