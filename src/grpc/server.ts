// Assembles the gateway: image store, operations, gRPC services (CRIU, health, reflection),
// listeners, and a graceful shutdown that cancels what is in flight and waits for every worker.
import { closeSync, promises as fs, openSync, readFileSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { release } from "node:os";
import { dirname, join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { CriuServiceService } from "../../gen/criu/gateway/v1/gateway.js";
import { type GatewayConfig, isLoopback, parseListenAddress } from "../config.js";
import { type CriuVersion, createCriuOperations } from "../domain/criuOperations.js";
import { EventBus } from "../domain/eventBus.js";
import { hostDoctor, systemReaders } from "../domain/hostDoctor.js";
import { inetSocketsFinding } from "../domain/hostFindings.js";
import { ImageStore, isErrno } from "../domain/imageStore.js";
import { defaultPolicy, type Policy, parsePolicy } from "../domain/policy.js";
import type { Logger } from "../log.js";
import { packageRoot } from "../packageRoot.js";
import { takeListenFds } from "../systemd/listenFds.js";
import { createCriuService } from "./criuService.js";
import { type AuditRecord, Gatekeeper } from "./gatekeeper.js";
import { serveInherited } from "./inheritedListeners.js";
import { addReflectionServices } from "./reflectionService.js";
import { createSessionHandler } from "./sessionHandler.js";
import { createSubscribeHandler } from "./subscribeHandler.js";
import { ReloadingTlsCredentials } from "./tlsCredentials.js";
import { withTotalDeserializers } from "./undecodable.js";
import { listenUnix, type UnixListener, UnixPeers } from "./unixListener.js";

export const SERVICE_NAME = "criu.gateway.v1.CriuService";

export interface RunningGateway {
  /** The bound addresses, with real ports for "host:0". */
  addresses: string[];
  /** Stops accepting calls, cancels calls still running after the grace period, waits for workers. */
  shutdown(graceMs?: number): Promise<void>;
  /** Pids of CRIU workers running now, warm ones included (for tests and metrics). */
  workerPids(): number[];
  /** Pids of the warm workers waiting for a call, the next call's first. */
  readyWorkerPids(): number[];
  /** Subscribe streams open now. */
  subscriberCount(): number;
  /**
   * Re-reads the policy file and the TLS files and reopens the audit log (as SIGHUP does). A
   * policy with a mistake is refused and the one in force stays; the result says what changed
   * or why not.
   */
  reload(): Promise<{ policy: "reloaded" | "unchanged" | string; tls: boolean }>;
  /** The policy in force. */
  policy(): Policy;
}

export interface GatewayHooks {
  /** Where audit records go instead of the configured audit log (tests). */
  audit?: (record: AuditRecord) => void;
}

/** RPC names as the proto spells them, for the policy to check its lists against. */
export const RPC_NAMES: readonly string[] = Object.values(CriuServiceService).map((m) =>
  m.path.slice(m.path.lastIndexOf("/") + 1),
);

/** Reads and validates a policy file; throws PolicyError naming the mistake. */
export function loadPolicy(path: string | undefined): Policy {
  if (path === undefined) return defaultPolicy();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`policy ${path} cannot be read: ${(err as Error).message}`);
  }
  return parsePolicy(text, path, RPC_NAMES);
}

/**
 * One JSON line per audit record: to a file opened for appending (0600), or to stderr. `reopen`
 * (on SIGHUP) opens the path again, so that a rotated log is followed by a fresh file; if that
 * fails, lines keep going to the file already open.
 */
function auditSink(
  path: string | undefined,
  logger: Logger,
): { write(r: AuditRecord): void; reopen(): void; close(): void } {
  let fd = path === undefined ? 2 : openSync(path, "a", 0o600);
  return {
    write(record) {
      writeSync(fd, `${JSON.stringify({ time: new Date().toISOString(), msg: "audit", ...record })}\n`);
    },
    reopen() {
      if (path === undefined) return;
      try {
        const next = openSync(path, "a", 0o600);
        closeSync(fd);
        fd = next;
      } catch (err) {
        logger.log("error", "audit log not reopened; lines go to the file already open", {
          path,
          error: (err as Error).message,
        });
      }
    },
    close() {
      if (fd !== 2) closeSync(fd);
    },
  };
}

export function gatewayVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * CRIU older than 4.2 on Linux 6.16 or later fails on every process holding an inet socket: said
 * at start-up, so that an operator reads it before the first failed dump (hostFindings.ts).
 */
function warnAboutInetSockets(criu: CriuVersion, logger: Logger): void {
  const finding = inetSocketsFinding([criu.majorNumber, criu.minorNumber, criu.sublevel ?? 0], release());
  if (finding.state === "ok") return;
  logger.log("warn", `host finding ${finding.name} is ${finding.state}: ${finding.detail}`, {
    blocks: finding.blocks,
    fix: finding.fix,
  });
}

export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  hooks: GatewayHooks = {},
): Promise<RunningGateway> {
  // Settings that can be wrong are checked before anything is opened or bound.
  const policy = loadPolicy(config.policyFile);
  const tls = config.tls ? ReloadingTlsCredentials.load(config.tls, logger) : undefined;
  const store = await ImageStore.open(config.imagesRoot);
  const events = new EventBus(config.subscriberBufferEvents);
  const hostReaders = systemReaders(config.criuBin);
  const operations = createCriuOperations({
    hostReaders,
    criuBin: config.criuBin,
    store,
    events,
    logTailLines: config.logTailLines,
    vetoGraceMs: config.vetoGraceMs,
    idleWorkerMs: config.idleWorkerMs,
    warmWorkers: config.warmWorkers,
    warmWorkerIdleMs: config.warmWorkerIdleMs,
    // For the gateway's own requests; callers get what their grant says. "never" is for nobody.
    allowedOptionClasses: new Set(["safe", "admin"]),
  });
  // Fail at start-up, not on the first call, when CRIU cannot run.
  let criu: Awaited<ReturnType<typeof operations.version>>;
  try {
    criu = await operations.version();
  } catch (err) {
    await operations.drain();
    throw new Error(
      `CRIU at ${config.criuBin} does not answer a VERSION request: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  warnAboutInetSockets(criu, logger);

  const audit = hooks.audit
    ? { write: hooks.audit, reopen() {}, close() {} }
    : auditSink(config.auditLog, logger);
  const unixPeers = new UnixPeers();
  const gatekeeper = new Gatekeeper({
    policy,
    unixPeers,
    recordedProcesses: async (id) => (await store.get(id)).processes,
    lineage: (id) => store.lineage(id),
    audit: (record) => audit.write(record),
  });

  const server = new Server({
    "grpc.max_receive_message_length": config.maxReceiveMessageBytes,
  });
  server.addService(withTotalDeserializers(CriuServiceService), {
    ...createCriuService({
      operations,
      store,
      gatewayVersion: gatewayVersion(),
      logger,
      gatekeeper,
      hostFindings: hostDoctor(hostReaders),
    }),
    session: createSessionHandler({
      operations,
      logger,
      gatekeeper,
      callbackTimeoutMs: config.callbackTimeoutMs,
      maxCallbackTimeoutMs: config.maxCallbackTimeoutMs,
    }),
    subscribe: createSubscribeHandler({ events, logger, gatekeeper, maxSubscribers: config.maxSubscribers }),
  });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  addReflectionServices(server, readFileSync(join(packageRoot, "gen", "descriptors.binpb")));

  const addresses: string[] = [];
  const unixPaths: string[] = [];
  const unixListeners: UnixListener[] = [];
  try {
    for (const address of config.listen) {
      const parsed = parseListenAddress(address);
      if (parsed.kind === "systemd") {
        const inherited = await serveInherited(server, takeListenFds(), {
          name: parsed.name,
          tls,
          insecure: config.insecure,
          peers: unixPeers,
          logger,
        });
        unixListeners.push(...inherited.listeners);
        addresses.push(...inherited.addresses);
      } else if (parsed.kind === "unix") {
        await prepareUnixSocket(parsed.path);
        unixListeners.push(
          await listenUnix(
            server,
            parsed.path,
            { mode: config.unixSocketMode, uid: config.unixSocketOwner, gid: config.unixSocketGroup },
            unixPeers,
            logger,
          ),
        );
        unixPaths.push(parsed.path);
        addresses.push(address);
      } else {
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
    }
  } catch (err) {
    for (const l of unixListeners) {
      l.stopAccepting();
      l.destroy();
    }
    server.forceShutdown();
    audit.close();
    // Warm workers were started with the operations: a gateway that does not start leaves none.
    await operations.drain();
    throw err;
  }
  tls?.watch(config.tlsReloadIntervalMs);
  logger.log("info", "gateway listening", {
    addresses,
    imagesRoot: config.imagesRoot,
    criu: config.criuBin,
    criuVersion: `${criu.majorNumber}.${criu.minorNumber}${criu.sublevel === undefined ? "" : `.${criu.sublevel}`}`,
    policy: policy.source,
    tls: tls ? { fingerprint: tls.fingerprint, mutual: config.tls?.clientCaFile !== undefined } : "off",
  });

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    workerPids: operations.workerPids,
    readyWorkerPids: operations.readyWorkerPids,
    subscriberCount: () => events.subscriberCount,
    policy: () => gatekeeper.policy,
    async reload() {
      audit.reopen();
      let policyResult: string;
      try {
        const next = loadPolicy(config.policyFile);
        gatekeeper.setPolicy(next);
        policyResult = config.policyFile === undefined ? "unchanged" : "reloaded";
        logger.log("info", "policy reloaded", { policy: next.source });
      } catch (err) {
        policyResult = (err as Error).message;
        logger.log("error", "policy not reloaded; the one in force stays", { error: policyResult });
      }
      return { policy: policyResult, tls: (await tls?.reload()) ?? false };
    },
    shutdown(graceMs = config.shutdownGraceMs) {
      stopping ??= (async () => {
        for (const l of unixListeners) l.stopAccepting();
        tls?.stop();
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
        for (const l of unixListeners) l.destroy();
        await operations.drain();
        for (const path of unixPaths) await fs.rm(path, { force: true });
        audit.close();
        logger.log("info", "gateway stopped");
      })();
      return stopping;
    },
  };
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
