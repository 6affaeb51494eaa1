// The gateway's listeners: unix sockets it accepts itself (for SO_PEERCRED), and TCP with TLS, or
// plain on loopback when the configuration says so.
import { promises as fs } from "node:fs";
import { connect } from "node:net";
import { dirname } from "node:path";
import { type Server, ServerCredentials } from "@grpc/grpc-js";
import { type GatewayConfig, isLoopback, parseListenAddress } from "../config.js";
import { isErrno } from "../domain/imageStore.js";
import { serveInherited } from "../grpc/inheritedListeners.js";
import type { ReloadingTlsCredentials } from "../grpc/tlsCredentials.js";
import { listenUnix, type UnixListener, type UnixPeers } from "../grpc/unixListener.js";
import type { Logger } from "../log.js";
import { takeListenFds } from "../systemd/listenFds.js";

export interface Listeners {
  /** The bound addresses, with real ports for "host:0". */
  addresses: string[];
  /** Accepts no more unix connections; those open carry on. */
  stopAccepting(): void;
  /** Ends the unix connections still open and removes the socket files. */
  close(): Promise<void>;
}

/** Binds every configured address; on a failure, closes what was opened and throws. */
export async function openListeners(
  server: Server,
  config: GatewayConfig,
  tls: ReloadingTlsCredentials | undefined,
  unixPeers: UnixPeers,
  logger: Logger,
): Promise<Listeners> {
  const addresses: string[] = [];
  const unixPaths: string[] = [];
  const unixListeners: UnixListener[] = [];
  const listeners: Listeners = {
    addresses,
    stopAccepting: () => {
      for (const l of unixListeners) l.stopAccepting();
    },
    async close() {
      for (const l of unixListeners) l.destroy();
      for (const path of unixPaths) await fs.rm(path, { force: true });
    },
  };
  try {
    for (const address of config.listen) {
      const parsed = parseListenAddress(address);
      if (parsed.kind === "systemd") {
        // Sockets systemd opened (socket activation): held to the same rules as our own.
        const inherited = await serveInherited(server, takeListenFds(), {
          name: parsed.name,
          tls,
          insecure: config.insecure,
          peers: unixPeers,
          logger,
        });
        unixListeners.push(...inherited.listeners);
        addresses.push(...inherited.addresses);
        continue;
      }
      if (parsed.kind === "unix") {
        await prepareUnixSocket(parsed.path);
        const settings = {
          mode: config.unixSocketMode,
          uid: config.unixSocketOwner,
          gid: config.unixSocketGroup,
        };
        unixListeners.push(await listenUnix(server, parsed.path, settings, unixPeers, logger));
        unixPaths.push(parsed.path);
        addresses.push(address);
        continue;
      }
      if (!tls && !(config.insecure && isLoopback(parsed.host))) {
        // resolveConfig refuses this; a config built another way must not slip past.
        throw new Error(`refusing plain TCP on ${address}: give TLS files, or --insecure on loopback`);
      }
      const port = await bind(server, address, tls ?? ServerCredentials.createInsecure());
      const host = parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
      addresses.push(`${host}:${port}`);
      if (!tls) {
        logger.log("warn", "INSECURE LISTENER: plain TCP without TLS; its callers are anonymous", {
          address: `${host}:${port}`,
          hint: "anyone on this host who can connect gets what the policy grants anonymous callers",
        });
      }
    }
  } catch (err) {
    listeners.stopAccepting();
    for (const l of unixListeners) l.destroy();
    throw err;
  }
  return listeners;
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => {
      if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
      else resolve(port);
    });
  });
}

/** Creates the socket's directory, and removes a stale socket file nobody listens on. */
async function prepareUnixSocket(path: string): Promise<void> {
  await fs.mkdir(dirname(path), { recursive: true, mode: 0o755 });
  try {
    const stat = await fs.lstat(path);
    if (!stat.isSocket())
      throw new Error(`cannot listen on unix:${path}: a file that is not a socket is in the way`);
  } catch (err) {
    if (isErrno(err, "ENOENT")) return;
    throw err;
  }
  const live = await new Promise<boolean>((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
  if (live)
    throw new Error(`cannot listen on unix:${path}: another process is listening there (another gateway?)`);
  await fs.rm(path, { force: true });
}
