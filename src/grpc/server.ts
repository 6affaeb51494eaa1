// Assembles the gateway: image store, operations, gRPC services (CRIU, health, reflection),
// listeners, and a graceful shutdown that cancels what is in flight and waits for every worker.
import { promises as fs, readFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { CriuServiceService } from "../../gen/criu/gateway/v1/gateway.js";
import { type GatewayConfig, parseListenAddress } from "../config.js";
import { createCriuOperations } from "../domain/criuOperations.js";
import { EventBus } from "../domain/eventBus.js";
import { ImageStore, isErrno } from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import { packageRoot } from "../packageRoot.js";
import { createCriuService } from "./criuService.js";
import { addReflectionServices } from "./reflectionService.js";
import { createSessionHandler } from "./sessionHandler.js";
import { createSubscribeHandler } from "./subscribeHandler.js";

export const SERVICE_NAME = "criu.gateway.v1.CriuService";

export interface RunningGateway {
  /** The bound addresses, with real ports for "host:0". */
  addresses: string[];
  /** Stops accepting calls, cancels calls still running after the grace period, waits for workers. */
  shutdown(graceMs?: number): Promise<void>;
  /** Pids of CRIU workers running now (for tests and metrics). */
  workerPids(): number[];
  /** Subscribe streams open now. */
  subscriberCount(): number;
}

export function gatewayVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const store = await ImageStore.open(config.imagesRoot);
  const events = new EventBus(config.subscriberBufferEvents);
  const operations = createCriuOperations({
    criuBin: config.criuBin,
    store,
    events,
    logTailLines: config.logTailLines,
    vetoGraceMs: config.vetoGraceMs,
    idleWorkerMs: config.idleWorkerMs,
    // One caller class until per-caller policy exists: whoever can reach the socket is an admin,
    // so by default that is root alone (0600 unix socket). "never" options are refused for all.
    allowedOptionClasses: new Set(["safe", "admin"]),
  });
  // Fail at start-up, not on the first call, when CRIU cannot run.
  let criu: Awaited<ReturnType<typeof operations.version>>;
  try {
    criu = await operations.version();
  } catch (err) {
    throw new Error(
      `CRIU at ${config.criuBin} does not answer a VERSION request: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  const server = new Server({
    "grpc.max_receive_message_length": config.maxReceiveMessageBytes,
  });
  server.addService(CriuServiceService, {
    ...createCriuService({ operations, store, gatewayVersion: gatewayVersion(), logger }),
    session: createSessionHandler({
      operations,
      logger,
      callbackTimeoutMs: config.callbackTimeoutMs,
      maxCallbackTimeoutMs: config.maxCallbackTimeoutMs,
    }),
    subscribe: createSubscribeHandler({ events, logger, maxSubscribers: config.maxSubscribers }),
  });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  addReflectionServices(server, readFileSync(join(packageRoot, "gen", "descriptors.binpb")));

  const addresses: string[] = [];
  const unixPaths: string[] = [];
  try {
    for (const address of config.listen) {
      const parsed = parseListenAddress(address);
      if (parsed.kind === "unix") {
        await prepareUnixSocket(parsed.path);
        await bind(server, address);
        await fs.chmod(parsed.path, config.unixSocketMode);
        unixPaths.push(parsed.path);
        addresses.push(address);
      } else {
        const port = await bind(server, address);
        const host = parsed.host.includes(":") ? `[${parsed.host}]` : parsed.host;
        addresses.push(`${host}:${port}`);
      }
    }
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  logger.log("info", "gateway listening", {
    addresses,
    imagesRoot: config.imagesRoot,
    criu: config.criuBin,
    criuVersion: `${criu.majorNumber}.${criu.minorNumber}${criu.sublevel === undefined ? "" : `.${criu.sublevel}`}`,
  });

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    workerPids: operations.workerPids,
    subscriberCount: () => events.subscriberCount,
    shutdown(graceMs = config.shutdownGraceMs) {
      stopping ??= (async () => {
        health.setStatus("", "NOT_SERVING");
        health.setStatus(SERVICE_NAME, "NOT_SERVING");
        // Subscriptions would hold the server open forever; sessions finish within the grace.
        events.closeAll();
        await new Promise<void>((resolve) => {
          // Calls still running after the grace period are cancelled; a cancelled dump or restore
          // is vetoed at CRIU's next callback, so it rolls back rather than stopping half-way.
          const timer = setTimeout(() => server.forceShutdown(), graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await operations.drain();
        for (const path of unixPaths) await fs.rm(path, { force: true });
        logger.log("info", "gateway stopped");
      })();
      return stopping;
    },
  };
}

function bind(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => {
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
