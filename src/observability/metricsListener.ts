// The HTTP listener Prometheus scrapes: GET /metrics, nothing else. It is separate from the gRPC
// listeners so that a scraper needs no gRPC and no grant. Plain HTTP on a unix socket or loopback;
// anywhere else it serves HTTPS with the gateway's certificate (and asks for a client certificate
// when the gRPC listeners do), as config validation insists.

import { chmod, readFile, rm } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { parseListenAddress } from "../config.js";
import type { GatewayMetrics } from "./metrics.js";

export interface MetricsListenerOptions {
  /** "unix:/path" or "host:port". */
  address: string;
  /** Set when the address is not loopback: served as HTTPS with these files. */
  tls?: { certFile: string; keyFile: string; clientCaFile: string | undefined };
}

export interface MetricsListener {
  /** Where it listens: the unix path, or host:port with the port the kernel chose for 0. */
  readonly address: string;
  close(): Promise<void>;
}

/** Starts serving `metrics` at the address; resolves once it listens. */
export async function startMetricsListener(
  metrics: GatewayMetrics,
  options: MetricsListenerOptions,
): Promise<MetricsListener> {
  const handler = (req: IncomingMessage, res: ServerResponse) => void answer(metrics, req, res);
  const server = options.tls ? await httpsServer(options.tls, handler) : createHttpServer(handler);
  const where = parseListenAddress(options.address);
  if (where.kind === "unix") {
    await rm(where.path, { force: true });
    await listen(server, (done) => server.listen(where.path, done));
    // Like the gRPC socket: root's own unless the operator widens it (a scraper runs as anyone).
    await chmod(where.path, 0o600);
    return { address: `unix:${where.path}`, close: () => closeServer(server) };
  }
  if (where.kind !== "tcp")
    throw new Error(`metrics-listen: ${options.address}: a unix path or host:port is needed`);
  await listen(server, (done) => server.listen(where.port, where.host, done));
  const { port } = server.address() as AddressInfo;
  const host = where.host.includes(":") ? `[${where.host}]` : where.host;
  return { address: `${host}:${port}`, close: () => closeServer(server) };
}

async function answer(metrics: GatewayMetrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/metrics") {
    res.writeHead(404, { "content-type": "text/plain" }).end("only /metrics is served here\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("GET /metrics\n");
    return;
  }
  try {
    const { contentType, body } = await metrics.exposition();
    res.writeHead(200, { "content-type": contentType }).end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(500, { "content-type": "text/plain" }).end("metrics could not be collected\n");
  }
}

async function httpsServer(
  tls: NonNullable<MetricsListenerOptions["tls"]>,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server> {
  const [cert, key, ca] = await Promise.all([
    readFile(tls.certFile),
    readFile(tls.keyFile),
    tls.clientCaFile ? readFile(tls.clientCaFile) : undefined,
  ]);
  return createHttpsServer(
    { cert, key, ca, requestCert: ca !== undefined, rejectUnauthorized: ca !== undefined },
    handler,
  );
}

function listen(server: Server, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    start(() => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
