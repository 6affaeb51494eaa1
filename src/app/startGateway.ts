// The composition root: assembles the gateway from its configuration (image store, operations,
// policy and audit log, the gRPC services, listeners) and its graceful shutdown, which cancels
// what is still in flight after the grace period and waits for every worker.
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { Server } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { CriuServiceService } from "../../gen/criu/gateway/v1/gateway.js";
import { type AuditLog, type AuditRecord, openAuditLog } from "../auth/auditLog.js";
import { Gatekeeper } from "../auth/gatekeeper.js";
import type { Policy } from "../auth/policy.js";
import type { GatewayConfig } from "../config.js";
import { type CriuOperations, type CriuVersion, createCriuOperations } from "../domain/criuOperations.js";
import { EventBus } from "../domain/eventBus.js";
import { type HostReaders, hostDoctor, systemReaders } from "../domain/hostDoctor.js";
import { inetSocketsFinding } from "../domain/hostFindings.js";
import { describeRecovered, ImageStore } from "../domain/imageStore.js";
import { settleLeftStopped } from "../domain/migration/stoppedTree.js";
import { TransferStats } from "../grpc/boundedWriter.js";
import type { CallInterceptor } from "../grpc/callContext.js";
import { createCallPipeline } from "../grpc/callPipeline.js";
import { createCriuService } from "../grpc/criuService.js";
import { createMigrationService } from "../grpc/migrationHandlers.js";
import { addReflectionServices } from "../grpc/reflectionService.js";
import { takeStreamsInTurns } from "../grpc/streamTurns.js";
import { ReloadingTlsCredentials } from "../grpc/tlsCredentials.js";
import { withTransferCodecs } from "../grpc/transferCodec.js";
import { createTransferService } from "../grpc/transferService.js";
import { widenServerWindows } from "../grpc/transferWindows.js";
import { withTotalDeserializers } from "../grpc/undecodable.js";
import { UnixPeers } from "../grpc/unixListener.js";
import type { Logger } from "../log.js";
import { packageRoot } from "../packageRoot.js";
import { gatewayVersion } from "./gatewayVersion.js";
import { loadPolicy } from "./loadPolicy.js";
import { openListeners } from "./openListeners.js";
import { shutdownGateway } from "./shutdownGateway.js";
import { startTelemetry, type Telemetry } from "./startTelemetry.js";

export const SERVICE_NAME = "criu.gateway.v1.CriuService";

export interface RunningGateway {
  /** The bound addresses, with real ports for "host:0". */
  addresses: string[];
  /** Where Prometheus scrapes, with the real port for "host:0"; undefined without --metrics-listen. */
  metricsAddress: string | undefined;
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
  /** Chunks the transfer streams hold now and at most (for tests and benchmarks). */
  transferStats(): TransferStats;
}

export interface GatewayHooks {
  /** Where audit records go instead of the configured audit log (tests). */
  audit?: (record: AuditRecord) => void;
  /** Steps around every CriuService call, outermost first (metrics, tracing). */
  interceptors?: readonly CallInterceptor[];
}

export async function startGateway(
  config: GatewayConfig,
  logger: Logger,
  hooks: GatewayHooks = {},
): Promise<RunningGateway> {
  // Settings that can be wrong are checked before anything is opened or bound.
  const policy = loadPolicy(config.policyFile);
  const tls = config.tls ? ReloadingTlsCredentials.load(config.tls, logger) : undefined;
  const store = await openStore(config.imagesRoot, logger);
  const events = new EventBus(config.subscriberBufferEvents);
  const hostReaders = systemReaders(config.criuBin);
  const operations = createOperations(config, store, events, hostReaders);
  const criu = await criuAnswers(operations, config.criuBin);
  warnAboutInetSockets(criu, logger);
  // Warm workers start with the operations: a start that fails from here on drains them.
  const telemetry = await startTelemetry(config, { store, events, operations }).catch(
    async (err: unknown) => {
      await operations.drain();
      throw err;
    },
  );
  const audit = countedAudit(hooks, config, logger, telemetry);
  const unixPeers = new UnixPeers();
  const gatekeeper = new Gatekeeper({
    policy,
    recordedProcesses: async (id) => (await store.get(id)).processes,
    lineage: (id) => store.lineage(id),
    audit: (record) => audit.write(record),
  });
  const { server, health, transferStats } = buildServer({
    config,
    logger,
    hooks,
    telemetry,
    gatekeeper,
    unixPeers,
    operations,
    store,
    events,
    hostFindings: hostDoctor(hostReaders),
  });
  let listeners: Awaited<ReturnType<typeof openListeners>>;
  try {
    listeners = await openListeners(server, config, tls, unixPeers, logger);
  } catch (err) {
    server.forceShutdown();
    // Nothing may outlive a start that failed: no worker, no listener, no open file.
    await operations.drain();
    await telemetry.close();
    audit.close();
    throw err;
  }
  tls?.watch(config.tlsReloadIntervalMs);
  logger.log("info", "gateway listening", {
    addresses: listeners.addresses,
    metrics: telemetry.metricsAddress ?? "off",
    imagesRoot: config.imagesRoot,
    criu: config.criuBin,
    criuVersion: `${criu.majorNumber}.${criu.minorNumber}${criu.sublevel === undefined ? "" : `.${criu.sublevel}`}`,
    policy: policy.source,
    tls: tls ? { fingerprint: tls.fingerprint, mutual: config.tls?.clientCaFile !== undefined } : "off",
  });

  let stopping: Promise<void> | undefined;
  return {
    addresses: listeners.addresses,
    metricsAddress: telemetry.metricsAddress,
    workerPids: operations.workerPids,
    readyWorkerPids: operations.readyWorkerPids,
    subscriberCount: () => events.subscriberCount,
    policy: () => gatekeeper.policy,
    transferStats: () => transferStats,
    reload: () => reloadFiles(config, logger, { audit, gatekeeper, tls }),
    shutdown(graceMs = config.shutdownGraceMs) {
      const parts = { server, health, serviceName: SERVICE_NAME, listeners, tls, events, operations };
      stopping ??= shutdownGateway({ ...parts, audit, telemetry, logger }, graceMs);
      return stopping;
    },
  };
}

/** Opens the image store; what a crash left staged was removed, or kept past a dump's point of no return. */
async function openStore(imagesRoot: string, logger: Logger): Promise<ImageStore> {
  const store = await ImageStore.open(imagesRoot);
  for (const r of store.recovered) {
    logger.log(r.outcome === "removed" ? "info" : "warn", describeRecovered(r), { checkpoint: r.id });
  }
  for (const left of settleLeftStopped(store.stoppedTreesDir)) {
    const done =
      left.onRestart === "continue"
        ? "continued on this host (the target never ran it)"
        : "killed (the source never let it run here)";
    logger.log(
      "warn",
      `migration ${left.id}: the tree it held stopped when the gateway stopped was ${done}`,
      {
        checkpoint: left.id,
        pids: left.pids.join(" "),
      },
    );
  }
  return store;
}

function createOperations(
  config: GatewayConfig,
  store: ImageStore,
  events: EventBus,
  hostReaders: HostReaders,
): CriuOperations {
  return createCriuOperations({
    hostReaders,
    criuBin: config.criuBin,
    store,
    events,
    logTailLines: config.logTailLines,
    vetoGraceMs: config.vetoGraceMs,
    idleWorkerMs: config.idleWorkerMs,
    maxConcurrentOperations: config.maxConcurrentOperations,
    maxQueuedOperations: config.maxQueuedOperations,
    warmWorkers: config.warmWorkers,
    warmWorkerIdleMs: config.warmWorkerIdleMs,
    criuLogLevel: config.criuLogLevel,
    // For the gateway's own requests; callers get what their grant says. "never" is for nobody.
    allowedOptionClasses: new Set(["safe", "admin"]),
  });
}

/** The audit log (or the tests' hook), whose refusals the metrics count too. */
function countedAudit(
  hooks: GatewayHooks,
  config: GatewayConfig,
  logger: Logger,
  telemetry: Telemetry,
): AuditLog {
  const auditLog: AuditLog = hooks.audit
    ? { write: hooks.audit, reopen() {}, close() {} }
    : openAuditLog(config.auditLog, logger);
  return {
    ...auditLog,
    write(record) {
      telemetry.audited(record);
      auditLog.write(record);
    },
  };
}

interface ServerParts {
  config: GatewayConfig;
  logger: Logger;
  hooks: GatewayHooks;
  telemetry: Telemetry;
  gatekeeper: Gatekeeper;
  unixPeers: UnixPeers;
  operations: CriuOperations;
  store: ImageStore;
  events: EventBus;
  hostFindings: ReturnType<typeof hostDoctor>;
}

/** The gRPC server with CriuService (through the call pipeline), health and reflection. */
function buildServer(parts: ServerParts): {
  server: Server;
  health: HealthImplementation;
  transferStats: TransferStats;
} {
  const { config, logger, gatekeeper, unixPeers, operations, store, events } = parts;
  const server = new Server({
    "grpc.max_receive_message_length": config.maxReceiveMessageBytes,
    // Channelz keeps per-call and per-session counters for a debugging service the gateway does
    // not serve; off, grpc-js takes its lighter path for every stream it receives.
    "grpc.enable_channelz": 0,
    interceptors: parts.telemetry.interceptors,
  });
  if (!widenServerWindows(server))
    logger.log("warn", "HTTP/2 windows left at 64 KiB: transfers will be slow");
  if (!takeStreamsInTurns(server))
    logger.log("warn", "calls that arrive together are taken in at once: bursts will hold the event loop");
  const pipeline = createCallPipeline({
    gatekeeper,
    unixPeers,
    logger,
    interceptors: parts.hooks.interceptors,
  });
  const transferStats = new TransferStats();
  server.addService(
    withTotalDeserializers(withTransferCodecs(CriuServiceService)),
    createCriuService({
      pipeline,
      operations,
      store,
      events,
      gatekeeper,
      gatewayVersion: gatewayVersion(),
      callbackTimeoutMs: config.callbackTimeoutMs,
      maxCallbackTimeoutMs: config.maxCallbackTimeoutMs,
      maxSubscribers: config.maxSubscribers,
      hostFindings: parts.hostFindings,
      transfers: createTransferService({
        store,
        events,
        logger,
        gatekeeper,
        unixPeers,
        stats: transferStats,
        config,
      }),
      migrations: createMigrationService({ pipeline, operations, store, targets: config }),
    }),
  );
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  addReflectionServices(server, readFileSync(join(packageRoot, "gen", "descriptors.binpb")));
  return { server, health, transferStats };
}

/** SIGHUP's work: the audit log reopened, the policy and the TLS files read again. */
async function reloadFiles(
  config: GatewayConfig,
  logger: Logger,
  parts: { audit: AuditLog; gatekeeper: Gatekeeper; tls: ReloadingTlsCredentials | undefined },
): ReturnType<RunningGateway["reload"]> {
  parts.audit.reopen();
  let policyResult: string;
  try {
    const next = loadPolicy(config.policyFile);
    parts.gatekeeper.setPolicy(next);
    policyResult = config.policyFile === undefined ? "unchanged" : "reloaded";
    logger.log("info", "policy reloaded", { policy: next.source });
  } catch (err) {
    policyResult = (err as Error).message;
    logger.log("error", "policy not reloaded; the one in force stays", { error: policyResult });
  }
  return { policy: policyResult, tls: (await parts.tls?.reload()) ?? false };
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

/** Fails at start-up, not on the first call, when CRIU cannot run. */
async function criuAnswers(operations: CriuOperations, criuBin: string): Promise<CriuVersion> {
  try {
    return await operations.version();
  } catch (err) {
    await operations.drain();
    throw new Error(`CRIU at ${criuBin} does not answer a VERSION request: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
