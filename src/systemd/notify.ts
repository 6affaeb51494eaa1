// Readiness and shutdown as systemd's Type=notify expects them (sd_notify(3)), sent through the
// native addon because NOTIFY_SOCKET is a unix datagram socket, which Node cannot send to.
import type { Logger } from "../log.js";
import { systemdAddon } from "./native.js";

let socketPath: string | undefined;
let claimed = false;

/** $NOTIFY_SOCKET, taken out of the environment on first use so that no child inherits it. */
function notifySocket(): string | undefined {
  if (!claimed) {
    claimed = true;
    socketPath = process.env.NOTIFY_SOCKET || undefined;
    delete process.env.NOTIFY_SOCKET;
  }
  return socketPath;
}

/**
 * Sends `state` (newline-separated KEY=VALUE lines) to the service manager; does nothing when
 * the gateway does not run under one. A failed send is logged, never fatal: systemd then times
 * the start out, which says more than a crash would.
 */
export function sdNotify(state: Record<string, string>, logger: Logger): void {
  const path = notifySocket();
  if (path === undefined) return;
  const text = Object.entries(state)
    .map(([key, value]) => `${key}=${value.replaceAll("\n", " ")}`)
    .join("\n");
  try {
    systemdAddon().notify(path, text);
  } catch (err) {
    logger.log("error", "cannot notify the service manager", { socket: path, error: (err as Error).message });
  }
}

/** READY=1, with the addresses served as the status line `systemctl status` shows. */
export function notifyReady(addresses: readonly string[], logger: Logger): void {
  sdNotify(
    { READY: "1", STATUS: `serving on ${addresses.join(", ")}`, MAINPID: String(process.pid) },
    logger,
  );
}

/** STOPPING=1: shutting down, waiting for calls in flight and CRIU's workers. */
export function notifyStopping(logger: Logger): void {
  sdNotify({ STOPPING: "1", STATUS: "shutting down: finishing calls in flight" }, logger);
}
