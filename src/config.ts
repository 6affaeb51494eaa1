// The gateway's configuration: one typed object, defaults in one place, validated once at start-up
// with messages that name the setting at fault.
import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isAbsolute, join } from "node:path";
import type { LogLevel } from "./log.js";
import { packageRoot } from "./packageRoot.js";

export interface GatewayConfig {
  /** Where to listen: "unix:/abs/path.sock" or "host:port" (TCP, loopback only for now). */
  listen: string[];
  /** The image store's root directory. */
  imagesRoot: string;
  /** The criu binary the workers run. */
  criuBin: string;
  /** File mode of unix sockets the gateway creates. */
  unixSocketMode: number;
  /** Lines of CRIU's log returned with a failed call. */
  logTailLines: number;
  /** How long a cancelled dump or restore may run on, waiting for a callback to veto, before its worker is killed. */
  vetoGraceMs: number;
  /** How long shutdown waits for calls in flight before cancelling them. */
  shutdownGraceMs: number;
  /** How long a Session's callback waits for the caller's answer, unless the caller asks for other. */
  callbackTimeoutMs: number;
  /** The longest callback timeout a caller may ask for. */
  maxCallbackTimeoutMs: number;
  /** Events queued per subscriber before it starts losing them. */
  subscriberBufferEvents: number;
  /** Subscribers served at once; more get RESOURCE_EXHAUSTED. */
  maxSubscribers: number;
  /** How long a worker is kept (CRIU's keep_open) for the next Version or FeatureCheck; 0 = never. */
  idleWorkerMs: number;
  /** Largest request message accepted, bytes. */
  maxReceiveMessageBytes: number;
  logLevel: LogLevel;
}

export const DEFAULT_SOCKET = "/run/criu-gateway/gateway.sock";
export const DEFAULT_ADDRESS = `unix:${DEFAULT_SOCKET}`;

/** The criu binary: $CRIU_BIN, else the one scripts/install-criu.sh chose, else `criu` on PATH. */
export function defaultCriuBin(): string {
  if (process.env.CRIU_BIN) return process.env.CRIU_BIN;
  const chosen = join(packageRoot, ".criu", "criu-path");
  if (existsSync(chosen)) {
    const path = readFileSync(chosen, "utf8").trim();
    if (path) return path;
  }
  return "criu";
}

export function defaultConfig(): GatewayConfig {
  return {
    listen: [DEFAULT_ADDRESS],
    imagesRoot: "/var/lib/criu-gateway/images",
    criuBin: defaultCriuBin(),
    unixSocketMode: 0o600,
    logTailLines: 40,
    vetoGraceMs: 30_000,
    shutdownGraceMs: 30_000,
    callbackTimeoutMs: 30_000,
    maxCallbackTimeoutMs: 600_000,
    subscriberBufferEvents: 1024,
    maxSubscribers: 1000,
    maxReceiveMessageBytes: 4 * 1024 * 1024,
    idleWorkerMs: 0,
    logLevel: "info",
  };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Applies defaults to what was given and validates the result. Throws ConfigError. */
export function resolveConfig(given: Partial<GatewayConfig>): GatewayConfig {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const config: GatewayConfig = { ...defaultConfig(), ...defined };
  if (config.listen.length === 0) throw new ConfigError("listen: at least one address is needed");
  for (const address of config.listen) parseListenAddress(address);
  if (!isAbsolute(config.imagesRoot)) {
    throw new ConfigError(`images-root: ${JSON.stringify(config.imagesRoot)} must be an absolute path`);
  }
  for (const [name, value, min] of [
    ["log-tail-lines", config.logTailLines, 0],
    ["veto-grace-ms", config.vetoGraceMs, 1],
    ["shutdown-grace-ms", config.shutdownGraceMs, 0],
    ["max-receive-message-bytes", config.maxReceiveMessageBytes, 1024],
    ["callback-timeout-ms", config.callbackTimeoutMs, 1],
    ["max-callback-timeout-ms", config.maxCallbackTimeoutMs, config.callbackTimeoutMs],
    ["subscriber-buffer-events", config.subscriberBufferEvents, 1],
    ["max-subscribers", config.maxSubscribers, 0],
    ["idle-worker-ms", config.idleWorkerMs, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new ConfigError(`${name}: ${value} must be a whole number of at least ${min}`);
    }
  }
  if (
    !Number.isInteger(config.unixSocketMode) ||
    config.unixSocketMode < 0 ||
    config.unixSocketMode > 0o777
  ) {
    throw new ConfigError(`unix-socket-mode: ${config.unixSocketMode} is not a file mode`);
  }
  if (!["debug", "info", "warn", "error"].includes(config.logLevel)) {
    throw new ConfigError(`log-level: ${config.logLevel} is not one of debug, info, warn, error`);
  }
  return config;
}

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Parses a listen address. Plain TCP is accepted on loopback only: there is no TLS yet. */
export function parseListenAddress(address: string): ListenAddress {
  if (address.startsWith("unix:")) {
    const path = address.slice("unix:".length);
    if (!isAbsolute(path)) throw new ConfigError(`listen: ${address}: the unix socket path must be absolute`);
    return { kind: "unix", path };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  if (!match) throw new ConfigError(`listen: ${JSON.stringify(address)} is neither unix:/path nor host:port`);
  const host = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (port > 65535) throw new ConfigError(`listen: ${address}: port ${port} is out of range`);
  const loopback = host === "localhost" || (isIP(host) === 4 && host.startsWith("127.")) || host === "::1";
  if (!loopback) {
    throw new ConfigError(
      `listen: ${address}: plain TCP is allowed on loopback only (127.0.0.0/8, ::1, localhost); the gateway gives root's powers to its callers`,
    );
  }
  return { kind: "tcp", host, port };
}
