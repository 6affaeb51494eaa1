// Serves gRPC on listening sockets the gateway inherited from systemd's socket activation
// (`--listen systemd` or `systemd:NAME`): unix sockets with their callers' kernel credentials, as
// the gateway's own unix listeners, and TCP sockets with TLS (or plain on loopback with
// --insecure), under the same rules as TCP listeners the gateway binds itself.
import { fstatSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from "node:net";
import { type Server, ServerCredentials } from "@grpc/grpc-js";
import { isLoopback } from "../config.js";
import type { Logger } from "../log.js";
import type { InheritedSocket } from "../systemd/listenFds.js";
import { connectionFeeder, type UnixListener, type UnixPeers, unixAdmission } from "./unixListener.js";

export interface InheritedServing {
  /** What each socket serves, as "unix:/path" or "host:port". */
  addresses: string[];
  /** Stop accepting and end connections like the gateway's own unix listeners. */
  listeners: UnixListener[];
}

export interface InheritedOptions {
  /** Only the sockets of this FileDescriptorName; all of them when undefined. */
  name: string | undefined;
  tls: ServerCredentials | undefined;
  insecure: boolean;
  peers: UnixPeers;
  logger: Logger;
}

/** Serves the inherited sockets `options.name` selects; throws when none is selected. */
export async function serveInherited(
  server: Server,
  sockets: readonly InheritedSocket[],
  options: InheritedOptions,
): Promise<InheritedServing> {
  const chosen = sockets.filter((s) => options.name === undefined || s.name === options.name);
  if (chosen.length === 0) {
    const what = options.name === undefined ? "sockets" : `socket named ${JSON.stringify(options.name)}`;
    const passed = sockets.length === 0 ? "none" : sockets.map((s) => s.name).join(", ");
    throw new Error(
      `--listen systemd${options.name === undefined ? "" : `:${options.name}`}: systemd passed no ${what} (passed: ${passed}); start the gateway through its socket unit`,
    );
  }
  const serving: InheritedServing = { addresses: [], listeners: [] };
  try {
    for (const socket of chosen) {
      const net = createServer({ allowHalfOpen: false, pauseOnConnect: false });
      let admitted: ReturnType<typeof admitFor>;
      try {
        await listenOnFd(net, socket);
        admitted = admitFor(server, net, socket, options);
      } catch (err) {
        if (net.listening) net.close();
        throw err;
      }
      net.on("connection", admitted.accept);
      serving.listeners.push(stopper(net, admitted.destroy));
      serving.addresses.push(admitted.address);
    }
  } catch (err) {
    for (const l of serving.listeners) {
      l.stopAccepting();
      l.destroy();
    }
    throw err;
  }
  return serving;
}

function listenOnFd(net: NetServer, socket: InheritedSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    net.once("error", (err) =>
      reject(new Error(`cannot serve the inherited socket ${socket.name} (fd ${socket.fd}): ${err.message}`)),
    );
    net.listen({ fd: socket.fd }, resolve);
  });
}

/** How connections of this socket are admitted: unix callers by credentials, TCP by TLS. */
function admitFor(
  server: Server,
  net: NetServer,
  socket: InheritedSocket,
  options: InheritedOptions,
): { address: string; accept: (socket: Socket) => void; destroy(): void } {
  const bound = net.address();
  if (typeof bound === "string" || bound === null) {
    const path = unixPathOf(socket.fd) ?? `(${socket.name}, fd ${socket.fd})`;
    const feeder = connectionFeeder(
      server,
      ServerCredentials.createInsecure(),
      unixAdmission(options.peers, options.logger, path),
    );
    return { address: `unix:${path}`, ...feeder };
  }
  const address = hostPort(bound);
  if (!options.tls && !(options.insecure && isLoopback(bound.address))) {
    throw new Error(
      `refusing plain TCP on the inherited socket ${socket.name} (${address}): give TLS files, or --insecure on loopback`,
    );
  }
  if (!options.tls) {
    options.logger.log("warn", "INSECURE LISTENER: plain TCP without TLS; its callers are anonymous", {
      address,
    });
  }
  return { address, ...connectionFeeder(server, options.tls ?? ServerCredentials.createInsecure()) };
}

/**
 * The path a unix socket is bound to, from the kernel's table of unix sockets by the socket's
 * inode (Node knows the path only of sockets it bound itself); undefined when it has none.
 */
function unixPathOf(fd: number): string | undefined {
  try {
    const inode = String(fstatSync(fd).ino);
    for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[6] === inode && fields[7]?.startsWith("/")) return fields[7];
    }
  } catch {
    // No /proc: the address is only for people to read.
  }
  return undefined;
}

function hostPort(info: AddressInfo): string {
  return `${info.family === "IPv6" ? `[${info.address}]` : info.address}:${info.port}`;
}

function stopper(net: NetServer, destroy: () => void): UnixListener {
  return {
    stopAccepting: () => {
      if (net.listening) net.close();
    },
    destroy,
  };
}
