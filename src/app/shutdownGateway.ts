// The gateway's graceful shutdown: no new calls, calls in flight given the grace period, then
// cancelled; every worker waited for. Termination signals are held meanwhile (holdSignals.ts).
import type { Server } from "@grpc/grpc-js";
import type { HealthImplementation } from "grpc-health-check";
import type { AuditLog } from "../auth/auditLog.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import type { EventBus } from "../domain/eventBus.js";
import type { ReloadingTlsCredentials } from "../grpc/tlsCredentials.js";
import type { Logger } from "../log.js";
import { holdSignals } from "./holdSignals.js";
import type { Listeners } from "./openListeners.js";

export interface ShutdownParts {
  server: Server;
  health: HealthImplementation;
  serviceName: string;
  listeners: Listeners;
  tls: ReloadingTlsCredentials | undefined;
  events: EventBus;
  operations: CriuOperations;
  audit: AuditLog;
  telemetry: { close(): Promise<void> };
  logger: Logger;
}

export async function shutdownGateway(parts: ShutdownParts, graceMs: number): Promise<void> {
  const { server, health, listeners, events, operations, logger } = parts;
  const release = holdSignals((signal) =>
    logger.log("warn", "already shutting down; calls in flight finish first, within the grace period", {
      signal,
      graceMs,
    }),
  );
  try {
    listeners.stopAccepting();
    parts.tls?.stop();
    health.setStatus("", "NOT_SERVING");
    health.setStatus(parts.serviceName, "NOT_SERVING");
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
    await listeners.close();
    await operations.drain();
    await parts.telemetry.close();
    parts.audit.close();
    logger.log("info", "gateway stopped");
  } finally {
    release();
  }
}
