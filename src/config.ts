// The gateway's configuration: one typed object, defaults in one place, validated once at start-up
// with messages that name the setting at fault.
import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { isAbsolute, join } from "node:path";
import type { LogLevel } from "./log.js";
import { packageRoot } from "./packageRoot.js";

export interface GatewayConfig {
  /**
   * Where to listen: "unix:/abs/path.sock", "host:port" (TCP: TLS, or plain on loopback with
   * `insecure`), or "systemd[:NAME]" for the sockets systemd's socket activation passed.
   */
  listen: string[];
  /** Certificate and key for TCP listeners; with a client CA, callers must present certificates (mTLS). */
  tls: { certFile: string; keyFile: string; clientCaFile: string | undefined } | undefined;
  /** How often TLS files are re-read for a new certificate (0: only on SIGHUP). */
  tlsReloadIntervalMs: number;
  /** Allows plain TCP listeners, on loopback only. Callers there prove nothing: they are anonymous. */
  insecure: boolean;
  /** Owner and group of unix sockets (undefined: the gateway's own, i.e. root). */
  unixSocketOwner: number | undefined;
  unixSocketGroup: number | undefined;
  /** The policy file (JSON); undefined: root on a unix socket is admin, nobody else may do anything. */
  policyFile: string | undefined;
  /** Where audit lines go: a file (appended, mode 0600) or undefined for stderr. */
  auditLog: string | undefined;
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
  /**
   * How long a worker is kept (CRIU's keep_open) for the next call when there are no warm workers;
   * 0 = never. With warm workers, a worker that answered Version or FeatureCheck rejoins them.
   */
  idleWorkerMs: number;
  /**
   * CRIU workers the gateway runs at once, for all callers together (each operation runs one; a
   * page server counts while it starts, not while it waits for a dump). Default: twice the CPU
   * count, at least 2: a dump is part CPU (freezing, the parasite, copying pages) and part waiting
   * on the disk.
   */
  maxConcurrentOperations: number;
  /**
   * CRIU's log level (0-4) for requests whose options set none. Default 4 (debug): measured on a
   * 256 MiB process, a dump's log is 255 KB at 4 against 94 bytes at CRIU's own default (2),
   * with no difference in dump time beyond run-to-run noise (docs/reliability.md); a failure's
   * log then says what CRIU was doing, without a re-run.
   */
  criuLogLevel: number;
  /** Operations that may wait for a worker beyond those; one more gets RESOURCE_EXHAUSTED. Default: 16 per worker. */
  maxQueuedOperations: number;
  /**
   * How many `criu swrk` workers are started ahead of need, waiting for a call (each an idle
   * process of a few MiB); 0 starts every worker when its call comes. They do not count against
   * maxConcurrentOperations until a call takes one.
   */
  warmWorkers: number;
  /** How long warm workers wait unused before they are closed; the next call starts them again. */
  warmWorkerIdleMs: number;
  /** Largest request message accepted, bytes. */
  maxReceiveMessageBytes: number;
  logLevel: LogLevel;
  /**
   * Gateways PushCheckpoint may send to, exactly as callers name them: "unix:/abs/path" or
   * "host:port" (always TLS). Empty: this gateway pushes nowhere. A list rather than any address
   * a caller names, because the gateway connects with its own identity.
   */
  pushTargets: string[];
  /** TLS for pushes to "host:port" targets: the CA that signs the targets' certificates, and the
   * certificate and key this gateway shows them (the target's policy judges that identity). */
  pushTls:
    | {
        caFile: string;
        certFile: string | undefined;
        keyFile: string | undefined;
        serverName: string | undefined;
      }
    | undefined;
  /**
   * Where Prometheus scrapes GET /metrics: "unix:/path" or "host:port"; undefined: no metrics
   * listener. Plain HTTP on a unix socket or loopback; elsewhere HTTPS with the TLS files.
   */
  metricsListen: string | undefined;
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
    tls: undefined,
    tlsReloadIntervalMs: 60_000,
    insecure: false,
    unixSocketOwner: undefined,
    unixSocketGroup: undefined,
    policyFile: undefined,
    auditLog: undefined,
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
    criuLogLevel: 4,
    maxConcurrentOperations: defaultConcurrency(),
    maxQueuedOperations: 16 * defaultConcurrency(),
    warmWorkers: 2,
    warmWorkerIdleMs: 600_000,
    logLevel: "info",
    pushTargets: [],
    pushTls: undefined,
    metricsListen: undefined,
  };
}

/** Twice the CPUs this process may use, at least 2. */
function defaultConcurrency(): number {
  return Math.max(2, 2 * availableParallelism());
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Applies defaults to what was given and validates the result. Throws ConfigError. */
export function resolveConfig(given: Partial<GatewayConfig>): GatewayConfig {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const config: GatewayConfig = { ...defaultConfig(), ...defined };
  if (config.listen.length === 0) throw new ConfigError("listen: at least one address is needed");
  for (const address of config.listen) {
    const parsed = parseListenAddress(address);
    if (parsed.kind !== "tcp") continue;
    if (config.tls) continue;
    if (!config.insecure) {
      throw new ConfigError(
        `listen: ${address}: TCP needs TLS (--tls-cert and --tls-key, with --tls-client-ca for mutual TLS), or --insecure for plain TCP on loopback`,
      );
    }
    if (!isLoopback(parsed.host)) {
      throw new ConfigError(
        `listen: ${address}: plain TCP (--insecure) is allowed on loopback only (127.0.0.0/8, ::1, localhost); the gateway gives root's powers to its callers`,
      );
    }
  }
  checkMetricsListen(config);
  if (config.tls && config.insecure) {
    throw new ConfigError(
      "insecure: --insecure and TLS files exclude each other; TCP listeners use TLS when it is given",
    );
  }
  if (config.tls && (!config.tls.certFile || !config.tls.keyFile)) {
    throw new ConfigError("tls: --tls-cert and --tls-key go together");
  }
  for (const [name, value] of [
    ["unix-socket-owner", config.unixSocketOwner],
    ["unix-socket-group", config.unixSocketGroup],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > 0xfffffffe)) {
      throw new ConfigError(`${name}: ${value} is not a uid/gid`);
    }
  }
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
    ["tls-reload-interval-ms", config.tlsReloadIntervalMs, 0],
    ["idle-worker-ms", config.idleWorkerMs, 0],
    ["max-concurrent-operations", config.maxConcurrentOperations, 1],
    ["criu-log-level", config.criuLogLevel, 0],
    ["max-queued-operations", config.maxQueuedOperations, 0],
    ["warm-workers", config.warmWorkers, 0],
    ["warm-worker-idle-ms", config.warmWorkerIdleMs, 1],
  ] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new ConfigError(`${name}: ${value} must be a whole number of at least ${min}`);
    }
  }
  if (config.criuLogLevel > 4) throw new ConfigError(`criu-log-level: ${config.criuLogLevel} must be 0 to 4`);
  if (
    !Number.isInteger(config.unixSocketMode) ||
    config.unixSocketMode < 0 ||
    config.unixSocketMode > 0o777
  ) {
    throw new ConfigError(`unix-socket-mode: ${config.unixSocketMode} is not a file mode`);
  }
  validatePushSettings(config);
  if (!["debug", "info", "warn", "error"].includes(config.logLevel)) {
    throw new ConfigError(`log-level: ${config.logLevel} is not one of debug, info, warn, error`);
  }
  return config;
}

function validatePushSettings(config: GatewayConfig): void {
  for (const target of config.pushTargets) {
    let parsed: ListenAddress;
    try {
      parsed = parseListenAddress(target);
    } catch (err) {
      throw new ConfigError(`push-target: ${(err as Error).message.replace(/^listen: /, "")}`);
    }
    if (parsed.kind === "systemd") {
      throw new ConfigError(`push-target: ${target} is a listening socket, not a gateway to connect to`);
    }
    if (parsed.kind === "tcp" && !config.pushTls) {
      throw new ConfigError(
        `push-target: ${target} is TCP, which needs --push-tls-ca (and a client certificate, --push-tls-cert and --push-tls-key, for a target with mutual TLS)`,
      );
    }
  }
  const tls = config.pushTls;
  if (tls && (tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new ConfigError("push-tls: --push-tls-cert and --push-tls-key go together");
  }
}

function checkMetricsListen(config: GatewayConfig): void {
  if (config.metricsListen === undefined) return;
  let parsed: ListenAddress;
  try {
    parsed = parseListenAddress(config.metricsListen);
  } catch (err) {
    throw new ConfigError(`metrics-${(err as Error).message}`);
  }
  if (parsed.kind === "systemd") {
    throw new ConfigError(
      `metrics-listen: ${config.metricsListen}: give unix:/path or host:port, not a systemd socket`,
    );
  }
  if (parsed.kind === "tcp" && !isLoopback(parsed.host) && !config.tls) {
    throw new ConfigError(
      `metrics-listen: ${config.metricsListen}: plain HTTP is served on loopback or a unix socket only; elsewhere it needs the TLS files (--tls-cert, --tls-key)`,
    );
  }
}

export type ListenAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "systemd"; name: string | undefined };

/**
 * Parses a listen address; whether TCP may be plain is decided by resolveConfig (and, for sockets
 * systemd passes, once they are seen). "systemd" serves every socket systemd's socket activation
 * passed; "systemd:NAME" those of one FileDescriptorName.
 */
export function parseListenAddress(address: string): ListenAddress {
  if (address === "systemd" || address.startsWith("systemd:")) {
    const name = address === "systemd" ? undefined : address.slice("systemd:".length);
    if (name !== undefined && !/^[A-Za-z0-9._-]{1,255}$/.test(name)) {
      throw new ConfigError(`listen: ${address}: ${JSON.stringify(name)} is not a FileDescriptorName`);
    }
    return { kind: "systemd", name };
  }
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
  if (!isIP(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new ConfigError(`listen: ${address}: ${JSON.stringify(host)} is not an IP address or host name`);
  }
  return { kind: "tcp", host, port };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || (isIP(host) === 4 && host.startsWith("127.")) || host === "::1";
}

/** A user name or number from /etc/passwd, as a uid. */
export function lookupUser(nameOrId: string): number {
  return lookupId(nameOrId, "/etc/passwd", "unix-socket-owner", "user");
}

/** A group name or number from /etc/group, as a gid. */
export function lookupGroup(nameOrId: string): number {
  return lookupId(nameOrId, "/etc/group", "unix-socket-group", "group");
}

function lookupId(nameOrId: string, file: string, setting: string, what: string): number {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // No such file: no names to look up.
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === nameOrId && fields[2] !== undefined && /^\d+$/.test(fields[2]))
      return Number(fields[2]);
  }
  throw new ConfigError(`${setting}: no ${what} named ${JSON.stringify(nameOrId)} in ${file}`);
}
