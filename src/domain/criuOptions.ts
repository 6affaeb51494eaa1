// CriuOptions (the public API) to criu_opts (CRIU's wire), and the class of every option.
//
// The two messages share field names and numbers, so the translation is a copy of the set fields
// plus what the gateway adds itself: the images directory fd, the log file, the parent link.
import {
  CriuCgMode,
  CriuNetworkLockMethod,
  type CriuOptions,
  CriuPreDumpMode,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { criuOpts } from "../../gen/criu/rpc.js";
import { GatewayError, invalidArgument } from "./errors.js";

/**
 * safe:  affects only the target processes, any caller granted the process may use it.
 * admin: names host paths or host resources (mounts, cgroups, namespaces, LSM, network), or makes
 *        CRIU act as root on host files or sockets outside the checkpoint, or serve memory on the
 *        network, so it can reach beyond the target processes; for administrators only.
 * never: would let a caller run commands, read or write arbitrary host files, or override the
 *        gateway's own settings; refused for everyone.
 */
export type OptionClass = "safe" | "admin" | "never";

/** Every CriuOptions field, classified. `satisfies` makes adding a field without a class a type error. */
export const OPTION_CLASSES = {
  pid: "safe",
  leaveRunning: "safe",
  // CRIU connects the external sockets by path, as root, at restore.
  extUnixSk: "admin",
  tcpEstablished: "safe",
  evasiveDevices: "safe",
  shellJob: "safe",
  fileLocks: "safe",
  logLevel: "safe",
  logFile: "never",
  ps: "admin",
  notifyScripts: "safe",
  root: "admin",
  trackMem: "safe",
  autoDedup: "safe",
  // CRIU creates link_remap.N hard links, as root, in the deleted file's directory on the host.
  linkRemap: "admin",
  veths: "admin",
  cpuCap: "safe",
  forceIrmap: "safe",
  execCmd: "never",
  extMnt: "admin",
  manageCgroups: "admin",
  cgRoot: "admin",
  rstSibling: "never",
  autoExtMnt: "admin",
  extSharing: "admin",
  extMasters: "admin",
  skipMnt: "admin",
  enableFs: "admin",
  unixSkIno: "admin",
  manageCgroupsMode: "admin",
  ghostLimit: "safe",
  irmapScanPaths: "admin",
  external: "admin",
  emptyNs: "admin",
  joinNs: "admin",
  cgroupProps: "admin",
  cgroupPropsFile: "admin",
  cgroupDumpController: "admin",
  freezeCgroup: "admin",
  timeout: "safe",
  tcpSkipInFlight: "safe",
  weakSysctls: "safe",
  // On a dump, CRIU serves the frozen memory to whoever connects to its lazy-pages port, on every
  // address and unauthenticated.
  lazyPages: "admin",
  orphanPtsMaster: "safe",
  configFile: "never",
  tcpClose: "safe",
  lsmProfile: "admin",
  tlsCacert: "never",
  tlsCacrl: "never",
  tlsCert: "never",
  tlsKey: "never",
  tls: "admin",
  tlsNoCnVerify: "admin",
  cgroupYard: "admin",
  preDumpMode: "safe",
  lsmMountContext: "admin",
  networkLock: "admin",
  mntnsCompatMode: "safe",
  skipFileRwxCheck: "safe",
  unprivileged: "safe",
  leaveStopped: "safe",
  displayStats: "safe",
  logToStderr: "safe",
} as const satisfies Record<keyof CriuOptions, OptionClass>;

type OptionName = keyof typeof OPTION_CLASSES;

/** Why a never-class option is refused, in words for the caller. */
const NEVER_REASONS: Partial<Record<OptionName, string>> = {
  logFile: "the gateway names CRIU's log itself and serves it with the checkpoint",
  execCmd: "it would run an arbitrary command as root after the restore",
  configFile: "a CRIU configuration file overrides every option, including the gateway's own",
  tlsCacert: "it names a host file; page-server TLS material is configured on the gateway",
  tlsCacrl: "it names a host file; page-server TLS material is configured on the gateway",
  tlsCert: "it names a host file; page-server TLS material is configured on the gateway",
  tlsKey: "it names a host file; page-server TLS material is configured on the gateway",
  rstSibling: "the restored tree would become a child of the gateway process itself",
};

const SNAKE: Record<string, string> = {};
for (const name of Object.keys(OPTION_CLASSES))
  SNAKE[name] = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The option's name as the proto spells it (leave_running), for messages to callers. */
export function protoName(field: string): string {
  return SNAKE[field] ?? field;
}

/** The options that are set, i.e. that would reach CRIU. */
export function setOptions(options: CriuOptions | undefined): OptionName[] {
  if (!options) return [];
  return (Object.keys(OPTION_CLASSES) as OptionName[]).filter((name) => {
    const value = options[name];
    return value !== undefined && !(Array.isArray(value) && value.length === 0);
  });
}

/**
 * Refuses options outside `allowed`, naming each and why. PERMISSION_DENIED, because the request
 * is well-formed: the caller is just not entitled to it.
 */
export function checkOptionClasses(
  options: CriuOptions | undefined,
  allowed: ReadonlySet<OptionClass>,
): void {
  const refused = setOptions(options).filter((name) => !allowed.has(OPTION_CLASSES[name]));
  if (refused.length === 0) return;
  const parts = refused.map((name) => {
    const cls = OPTION_CLASSES[name];
    const why = cls === "never" ? NEVER_REASONS[name] : "it is reserved to administrators";
    return `${protoName(name)} (${why})`;
  });
  throw new GatewayError(
    "PERMISSION_DENIED",
    `option${parts.length > 1 ? "s" : ""} not allowed: ${parts.join("; ")}`,
  );
}

/** Rejects values CRIU would misread or that cannot be right, before a worker is started. */
export function validateOptionValues(options: CriuOptions | undefined): void {
  if (!options) return;
  if (options.logLevel !== undefined && (options.logLevel < 0 || options.logLevel > 4)) {
    throw invalidArgument(`log_level must be 0 to 4, not ${options.logLevel}`);
  }
  if (options.ps?.port !== undefined && (options.ps.port < 0 || options.ps.port > 65535)) {
    throw invalidArgument(`ps.port must be 0 to 65535, not ${options.ps.port}`);
  }
  for (const [name, value, known] of [
    ["manage_cgroups_mode", options.manageCgroupsMode, CriuCgMode],
    ["network_lock", options.networkLock, CriuNetworkLockMethod],
    ["pre_dump_mode", options.preDumpMode, CriuPreDumpMode],
  ] as const) {
    // Only the values the API defines: CRIU's wire enum cannot carry any other.
    const defined = Object.values(known).filter((v): v is number => typeof v === "number" && v >= 0);
    if (value !== undefined && !defined.includes(value)) {
      throw invalidArgument(`${name} ${value} is not one of the defined values (${defined.join(", ")})`);
    }
  }
}

export interface GatewaySettings {
  imagesDirFd: number;
  logFile: string;
  parentImg?: string;
  /** The gateway turns callbacks on for every dump and restore: they are its safe points to abort. */
  notifyScripts?: boolean;
  /** CRIU's log level when the caller sets none (CRIU's own default is 2, errors and warnings). */
  logLevel?: number;
}

/** Builds CRIU's criu_opts from the caller's options and the gateway's own settings. */
export function toCriuOpts(options: CriuOptions | undefined, settings: GatewaySettings): criuOpts {
  const out: Record<string, unknown> = {};
  for (const name of setOptions(options)) {
    const value = options![name];
    // Enum zero values mean "CRIU's default" in the API (except cgroup mode, where 0 is IGNORE).
    if ((name === "networkLock" || name === "preDumpMode") && value === 0) continue;
    out[name] = value;
  }
  if (options?.logLevel === undefined && settings.logLevel !== undefined) out.logLevel = settings.logLevel;
  out.imagesDirFd = settings.imagesDirFd;
  // log_to_stderr asks CRIU not to write a log file; otherwise the gateway names it.
  if (!options?.logToStderr) out.logFile = settings.logFile;
  if (settings.parentImg !== undefined) out.parentImg = settings.parentImg;
  if (settings.notifyScripts) out.notifyScripts = true;
  return out as unknown as criuOpts;
}

/** The classes of the options that are set, for the audit log. */
export function optionClassesUsed(options: CriuOptions | undefined): OptionClass[] {
  const used = new Set(setOptions(options).map((name) => OPTION_CLASSES[name]));
  return (["safe", "admin", "never"] as const).filter((c) => used.has(c));
}
