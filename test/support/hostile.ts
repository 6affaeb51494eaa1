// A deterministic generator of hostile and malformed requests (docs/security.md, claim 19), each
// with the statuses a correct gateway may answer it with.
//
// The statuses come from an oracle that reads the request the way the README's error table does:
// every defect of a request (bad id, never-class option, value out of range, pid refused, unknown
// checkpoint…) justifies one status, and the gateway may answer any justified one (the order in
// which it checks is not part of its contract). INTERNAL is never justified; bytes that do not
// decode get INVALID_ARGUMENT naming the request (see RAW_DESERIALIZE_STATUS).
//
// Safety: no request generated here may make CRIU dump or restore a live process. Every Dump has
// a pid the gateway must refuse before a worker starts (missing, not positive, above pid_max, the
// gateway or one of its ancestors), every Restore names a checkpoint of an empty store, every
// Subscribe is refused; raw bytes are decoded here with the server's own decoder and thrown away
// when they would decode to anything else. `generateHostileCases` throws if a case breaks this.
import { existsSync, readFileSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import {
  CheckRequest,
  CriuCgMode,
  CriuNetworkLockMethod,
  CriuOptions,
  CriuPreDumpMode,
  DeleteCheckpointRequest,
  DumpRequest,
  FeatureCheckRequest,
  GetCheckpointRequest,
  ListCheckpointsRequest,
  OperationKind,
  RestoreRequest,
  SessionRequest,
  SubscribeRequest,
  VersionRequest,
} from "../../gen/criu/gateway/v1/gateway.js";

export type HostileCall =
  | { rpc: "Version" | "FeatureCheck" | "ListCheckpoints" }
  | { rpc: "Check"; request: CheckRequest }
  | { rpc: "Dump"; request: DumpRequest }
  | { rpc: "Restore"; request: RestoreRequest }
  | { rpc: "GetCheckpoint" | "DeleteCheckpoint"; request: GetCheckpointRequest }
  | { rpc: "Session"; messages: SessionRequest[] }
  | { rpc: "Subscribe"; request: SubscribeRequest }
  | { rpc: "Raw"; path: string; bytes: Buffer };

export interface HostileCase {
  /** Index in the generated list: the case's name in reports. */
  index: number;
  /** What kind of attack, e.g. "id:Dump" or "raw:truncated". */
  label: string;
  call: HostileCall;
  /** gRPC status codes a correct gateway may answer with. */
  accept: ReadonlySet<number>;
  /** When set, the status message must be exactly this. */
  exactMessage?: string;
  /** Every text the request carried: status messages may quote it, paths included. */
  haystack: string;
  /** Whether a CRIU worker runs for it (an OK answer is then possible). */
  reachesCriu: boolean;
}

export interface HostileEnv {
  pidMax: number;
  /** The gateway runs in the test process. */
  gatewayPid: number;
  /** The gateway's ancestors, parent first, as /proc tells. */
  ancestors: number[];
  maxReceiveMessageBytes: number;
}

export function hostileEnv(maxReceiveMessageBytes = 4 * 1024 * 1024): HostileEnv {
  const ancestors: number[] = [];
  let current = process.pid;
  while (current > 1) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${current}/stat`, "utf8");
    } catch {
      break;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid) || ppid <= 0) break;
    ancestors.push(ppid);
    current = ppid;
  }
  return {
    pidMax: Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim()),
    gatewayPid: process.pid,
    ancestors,
    maxReceiveMessageBytes,
  };
}

/**
 * What the gateway answers to a request whose bytes do not decode: INVALID_ARGUMENT naming the
 * request and the decoder's complaint (grpc-js alone would say INTERNAL, blaming the server).
 */
export const RAW_DESERIALIZE_STATUS = {
  code: status.INVALID_ARGUMENT,
  message: (err: unknown, method: string) =>
    `the ${method} request is not a valid protobuf message: ${(err as Error).message}`,
};

// ---------------------------------------------------------------------------------------------
// PRNG

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile values

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const FIXED_IDS: readonly string[] = [
  "",
  ".",
  "..",
  "...",
  "../",
  "./",
  "../etc",
  "../../../../../../etc/passwd",
  "../images",
  "..%2f..%2fetc",
  "%2e%2e%2f",
  "/",
  "//",
  "/etc/passwd",
  "/tmp/hostile-escape",
  "/proc/self/root/etc/shadow",
  "/dev/null",
  "a/b",
  "a/../b",
  "a/./b",
  "a/",
  "/a",
  "./a",
  "a/.",
  "a/..",
  `..${"/".repeat(100)}`,
  "ok/../../hostile-escape",
  ".hidden",
  ".tmp-x",
  ".tmp-hostile-000000000000",
  ".del-x",
  "-dash",
  "_under",
  "a\0b",
  "\0",
  "\0../etc",
  "a\nb",
  "a\rb",
  "a\tb",
  "a\x1b[31mred",
  "\x7f",
  "a\x01b",
  "ümlaut",
  "日本語",
  "a\u202eb",
  "a\u200bb",
  "😀",
  "a\ud800b",
  "\uffff",
  "a\u0085b",
  "a\u2028b",
  "a b",
  " a",
  "a ",
  "a:b",
  "a;rm -rf /",
  "$(id)",
  "`id`",
  "a*",
  "a?",
  "a|b",
  "a\\b",
  "..\\..\\windows",
  "C:\\x",
  "~root",
  "~/.ssh",
  "symlink->/etc",
  "link@",
  "proc/self/root",
  "x".repeat(127),
  "x".repeat(128),
  "x".repeat(129),
  "x".repeat(200),
  `${"x".repeat(128)}/`,
  `a${".".repeat(127)}`,
  `a${".".repeat(128)}`,
  "a..b",
  "a.",
  "CON",
  "0",
  "a%00b",
];

const ID_FRAGMENTS: readonly string[] = [
  "..",
  "/",
  ".",
  "\0",
  "\n",
  "\x1b",
  "\x7f",
  "é",
  "日",
  "😀",
  "\u202e",
  "a",
  "Z",
  "9",
  "-",
  "_",
  " ",
  "%2f",
  "\\",
  "etc",
  "passwd",
  "hostile",
  ":",
  "*",
];

function generatedId(rng: Rng): string {
  const roll = rng.next();
  if (roll < 0.1) return rng.pick(["x", "A", "9"]).repeat(rng.int(126, 131));
  if (roll < 0.15) return `${rng.pick(["a", "."])}${"/..".repeat(rng.int(1, 40))}`;
  let out = "";
  const n = rng.int(1, 24);
  for (let i = 0; i < n; i++) out += rng.pick(ID_FRAGMENTS);
  return out;
}

const HOSTILE_PATHS: readonly string[] = [
  "/",
  "/etc/passwd",
  "/etc/shadow",
  "/tmp/hostile-file",
  "/tmp/hostile-dir/",
  "/proc/self/fd/0",
  "/proc/1/root",
  "/dev/mem",
  "/dev/sda",
  "../../../../tmp/hostile-up",
  "./hostile-rel",
  "hostile-rel",
  "",
  "\0/etc",
  "/tmp/\nhostile",
  "/sys/fs/cgroup",
  "/run/criu-gateway/gateway.sock",
  "x".repeat(5000),
];

function hostileString(rng: Rng): string {
  return rng.chance(0.7) ? rng.pick(HOSTILE_PATHS) : generatedId(rng);
}

function strings(rng: Rng, max: number): string[] {
  return Array.from({ length: rng.int(1, max) }, () => hostileString(rng));
}

/** Safe and admin options with hostile but well-typed, in-range values. */
const ALLOWED_OPTION_MAKERS: readonly ((rng: Rng) => Partial<CriuOptions>)[] = [
  (r) => ({ leaveRunning: r.chance(0.5) }),
  (r) => ({ extUnixSk: r.chance(0.5), tcpEstablished: r.chance(0.5) }),
  (r) => ({ evasiveDevices: r.chance(0.5), shellJob: r.chance(0.5), fileLocks: r.chance(0.5) }),
  (r) => ({ logLevel: r.int(0, 4) }),
  (r) => ({ ps: { address: hostileString(r), port: r.int(0, 65535), pid: r.int(-(2 ** 31), 2 ** 31 - 1) } }),
  (r) => ({ root: hostileString(r) }),
  (r) => ({ trackMem: r.chance(0.5), autoDedup: r.chance(0.5), linkRemap: r.chance(0.5) }),
  (r) => ({ veths: [{ ifIn: hostileString(r), ifOut: hostileString(r) }] }),
  (r) => ({ cpuCap: r.int(0, 2 ** 32 - 1) }),
  (r) => ({ extMnt: [{ key: hostileString(r), val: hostileString(r) }] }),
  (r) => ({ manageCgroups: r.chance(0.5) }),
  (r) => ({ cgRoot: [{ ctrl: hostileString(r), path: hostileString(r) }] }),
  (r) => ({ autoExtMnt: r.chance(0.5), extSharing: r.chance(0.5), extMasters: r.chance(0.5) }),
  (r) => ({ skipMnt: strings(r, 4), enableFs: strings(r, 3) }),
  (r) => ({ unixSkIno: [{ inode: r.int(0, 2 ** 32 - 1) }] }),
  (r) => ({ manageCgroupsMode: r.int(0, 6) }),
  (r) => ({ ghostLimit: r.int(0, 2 ** 32 - 1), emptyNs: r.int(0, 2 ** 32 - 1) }),
  (r) => ({ irmapScanPaths: strings(r, 4) }),
  (r) => ({ external: strings(r, 6) }),
  (r) => ({ joinNs: [{ ns: r.pick(["net", "ipc", "uts", "bogus", "../x"]), nsFile: hostileString(r) }] }),
  (r) => ({ cgroupProps: hostileString(r), cgroupPropsFile: hostileString(r) }),
  (r) => ({ cgroupDumpController: strings(r, 3), freezeCgroup: hostileString(r) }),
  (r) => ({ timeout: r.int(0, 2 ** 32 - 1) }),
  (r) => ({ tcpSkipInFlight: r.chance(0.5), weakSysctls: r.chance(0.5), lazyPages: r.chance(0.5) }),
  (r) => ({ orphanPtsMaster: r.chance(0.5), tcpClose: r.chance(0.5) }),
  (r) => ({ lsmProfile: hostileString(r), lsmMountContext: hostileString(r) }),
  (r) => ({ tls: r.chance(0.5), tlsNoCnVerify: r.chance(0.5) }),
  (r) => ({ cgroupYard: hostileString(r) }),
  (r) => ({ preDumpMode: r.int(0, 2), networkLock: r.int(0, 3) }),
  (r) => ({ mntnsCompatMode: r.chance(0.5), skipFileRwxCheck: r.chance(0.5), unprivileged: r.chance(0.5) }),
  (r) => ({ leaveStopped: r.chance(0.5), displayStats: r.chance(0.5), logToStderr: r.chance(0.5) }),
  (r) => ({ notifyScripts: r.chance(0.5) }),
];

/** The never-class options (OPTION_CLASSES), each with hostile values. */
const NEVER_OPTION_MAKERS: Readonly<Record<string, (rng: Rng) => Partial<CriuOptions>>> = {
  config_file: (r) => ({ configFile: r.chance(0.2) ? "" : hostileString(r) }),
  exec_cmd: (r) => ({
    execCmd: r.chance(0.5) ? ["/bin/sh", "-c", "touch /tmp/hostile-exec"] : strings(r, 3),
  }),
  log_file: (r) => ({ logFile: r.chance(0.2) ? "" : hostileString(r) }),
  tls_cacert: (r) => ({ tlsCacert: hostileString(r) }),
  tls_cacrl: (r) => ({ tlsCacrl: hostileString(r) }),
  tls_cert: (r) => ({ tlsCert: hostileString(r) }),
  tls_key: (r) => ({ tlsKey: hostileString(r) }),
  rst_sibling: (r) => ({ rstSibling: r.chance(0.7) }),
};
const NEVER_NAMES = Object.keys(NEVER_OPTION_MAKERS);

/** Values outside what the API documents (README: "option out of range" is INVALID_ARGUMENT). */
const OUT_OF_RANGE_MAKERS: readonly ((rng: Rng) => Partial<CriuOptions>)[] = [
  (r) => ({ logLevel: r.pick([5, -1, 2 ** 31 - 1, -(2 ** 31), 100]) }),
  (r) => ({ ps: { port: r.pick([70000, 65536, -1, 2 ** 31 - 1, -(2 ** 31)]) } }),
  (r) => ({ manageCgroupsMode: r.pick([-1, 7, 99, 2 ** 31 - 1, -(2 ** 31)]) }),
  (r) => ({ networkLock: r.pick([-5, -1, 4, 99]) as CriuOptions["networkLock"] }),
  (r) => ({ preDumpMode: r.pick([-1, 3, 77, -(2 ** 31)]) }),
];

function mergeOptions(parts: Partial<CriuOptions>[]): CriuOptions {
  const merged: Partial<CriuOptions> = {};
  for (const p of parts) {
    for (const [k, v] of Object.entries(p)) {
      const key = k as keyof CriuOptions;
      if (key === "ps" && merged.ps && v) merged.ps = { ...merged.ps, ...(v as object) };
      else (merged as Record<string, unknown>)[key] = v;
    }
  }
  return CriuOptions.fromPartial(merged);
}

function allowedOptions(rng: Rng, n: number): Partial<CriuOptions>[] {
  return Array.from({ length: n }, () => rng.pick(ALLOWED_OPTION_MAKERS)(rng));
}

// ---------------------------------------------------------------------------------------------
// The oracle

const { INVALID_ARGUMENT: IA, PERMISSION_DENIED: PD, NOT_FOUND: NF, RESOURCE_EXHAUSTED: RE } = status;

const NEVER_FIELDS = [
  "configFile",
  "execCmd",
  "logFile",
  "tlsCacert",
  "tlsCacrl",
  "tlsCert",
  "tlsKey",
  "rstSibling",
] as const;

function isSet(value: unknown): boolean {
  return value !== undefined && !(Array.isArray(value) && value.length === 0);
}

function outside(value: number | undefined, lo: number, hi: number): boolean {
  return value !== undefined && (value < lo || value > hi);
}

/** The values a generated (ts-proto) enum defines, without its UNRECOGNIZED (-1). */
function enumValues(e: object): number[] {
  return Object.values(e).filter((v): v is number => typeof v === "number" && v >= 0);
}

/** An enum value the API does not define (read from gen/, so that new values are picked up). */
function undefinedIn(e: object, value: number | undefined): boolean {
  return value !== undefined && !enumValues(e).includes(value);
}

/** Operation kinds a Subscribe filter may name: every defined one but UNSPECIFIED. */
const SUBSCRIBE_KINDS = enumValues(OperationKind).filter((k) => k > 0);

function optionDefects(o: CriuOptions | undefined, into: Set<number>): void {
  if (!o) return;
  if (NEVER_FIELDS.some((f) => isSet(o[f]))) into.add(PD);
  if (
    outside(o.logLevel, 0, 4) ||
    outside(o.ps?.port, 0, 65535) ||
    undefinedIn(CriuCgMode, o.manageCgroupsMode) ||
    undefinedIn(CriuNetworkLockMethod, o.networkLock) ||
    undefinedIn(CriuPreDumpMode, o.preDumpMode)
  ) {
    into.add(IA);
  }
}

/** Statuses justified by a Dump's defects; `safe` is false when the pid is not one the gateway must refuse. */
function judgeDump(req: DumpRequest, env: HostileEnv): { accept: Set<number>; safe: boolean } {
  const accept = new Set<number>();
  if (!ID_PATTERN.test(req.checkpointId)) accept.add(IA);
  if (req.parentCheckpointId !== "") accept.add(ID_PATTERN.test(req.parentCheckpointId) ? NF : IA);
  optionDefects(req.options, accept);
  const pid = req.options?.pid;
  let safe = true;
  if (pid === undefined || pid <= 0) accept.add(IA);
  else if (pid === env.gatewayPid || env.ancestors.includes(pid)) accept.add(PD);
  else if (pid > env.pidMax && !existsSync(`/proc/${pid}`)) accept.add(NF);
  else safe = false;
  return { accept, safe };
}

function judgeRestore(req: RestoreRequest): Set<number> {
  const accept = new Set<number>();
  // The store is empty all along: a valid id names no checkpoint.
  accept.add(ID_PATTERN.test(req.checkpointId) ? NF : IA);
  optionDefects(req.options, accept);
  return accept;
}

function judgeCheck(req: CheckRequest): { accept: Set<number>; reachesCriu: boolean } {
  const accept = new Set<number>();
  optionDefects(req.options, accept);
  if (accept.size > 0) return { accept, reachesCriu: false };
  // CRIU decides: the kernel supports it (OK), does not (FAILED_PRECONDITION), or CRIU rejects
  // the options (EBADRQC, INVALID_ARGUMENT). Options too big for CRIU's socket, though within
  // gRPC's limit, may also be refused as too large (RESOURCE_EXHAUSTED) or invalid.
  const accept2 = new Set([status.OK, status.FAILED_PRECONDITION, IA]);
  if (req.options && CriuOptions.encode(req.options).finish().length > 64 * 1024) accept2.add(RE);
  return { accept: accept2, reachesCriu: true };
}

function judgeId(id: string): Set<number> {
  return new Set([ID_PATTERN.test(id) ? NF : IA]);
}

interface Judgement {
  accept: Set<number>;
  safe: boolean;
  reachesCriu: boolean;
}

export function judge(call: HostileCall, env: HostileEnv): Judgement {
  switch (call.rpc) {
    case "Version":
    case "FeatureCheck":
      return { accept: new Set([status.OK]), safe: true, reachesCriu: true };
    case "ListCheckpoints":
      return { accept: new Set([status.OK]), safe: true, reachesCriu: false };
    case "Check":
      return { ...judgeCheck(call.request), safe: true };
    case "Dump":
      return { ...judgeDump(call.request, env), reachesCriu: false };
    case "Restore":
      return { accept: judgeRestore(call.request), safe: true, reachesCriu: false };
    case "GetCheckpoint":
    case "DeleteCheckpoint":
      return { accept: judgeId(call.request.checkpointId), safe: true, reachesCriu: false };
    case "Subscribe": {
      const accept = new Set<number>();
      if (call.request.kinds.some((k) => !SUBSCRIBE_KINDS.includes(k))) accept.add(IA);
      if (call.request.pid < 0) accept.add(IA);
      // An accepted subscription stays open: never generated.
      return { accept, safe: accept.size > 0, reachesCriu: false };
    }
    case "Session": {
      const [first, ...rest] = call.messages;
      const accept = new Set<number>();
      // Anything after the start is a reply to a callback nobody asked: a protocol error.
      if (rest.length > 0) accept.add(IA);
      if (!first?.start || (!first.start.dump && !first.start.restore)) {
        accept.add(IA);
        return { accept, safe: true, reachesCriu: false };
      }
      if (first.start.dump) {
        const d = judgeDump(first.start.dump, env);
        for (const c of d.accept) accept.add(c);
        return { accept, safe: d.safe, reachesCriu: false };
      }
      for (const c of judgeRestore(first.start.restore!)) accept.add(c);
      return { accept, safe: true, reachesCriu: false };
    }
    case "Raw":
      return judgeRaw(call.path, call.bytes, env);
  }
}

const SERVICE = "/criu.gateway.v1.CriuService/";

const DECODERS: Record<string, (b: Buffer) => HostileCall> = {
  Version: (b) => {
    VersionRequest.decode(b);
    return { rpc: "Version" };
  },
  FeatureCheck: (b) => {
    FeatureCheckRequest.decode(b);
    return { rpc: "FeatureCheck" };
  },
  ListCheckpoints: (b) => {
    ListCheckpointsRequest.decode(b);
    return { rpc: "ListCheckpoints" };
  },
  Check: (b) => ({ rpc: "Check", request: CheckRequest.decode(b) }),
  Dump: (b) => ({ rpc: "Dump", request: DumpRequest.decode(b) }),
  Restore: (b) => ({ rpc: "Restore", request: RestoreRequest.decode(b) }),
  GetCheckpoint: (b) => ({ rpc: "GetCheckpoint", request: GetCheckpointRequest.decode(b) }),
  DeleteCheckpoint: (b) => ({ rpc: "DeleteCheckpoint", request: DeleteCheckpointRequest.decode(b) }),
};

/** Raw bytes: judged as what the server's own decoder makes of them. */
function judgeRaw(path: string, bytes: Buffer, env: HostileEnv): Judgement & { exactMessage?: string } {
  const method = path.startsWith(SERVICE) ? path.slice(SERVICE.length) : "";
  const decode = DECODERS[method];
  if (!decode) return { accept: new Set([status.UNIMPLEMENTED]), safe: true, reachesCriu: false };
  if (bytes.length > env.maxReceiveMessageBytes)
    return { accept: new Set([RE]), safe: true, reachesCriu: false };
  let decoded: HostileCall;
  try {
    decoded = decode(bytes);
  } catch (err) {
    return {
      accept: new Set([RAW_DESERIALIZE_STATUS.code]),
      exactMessage: RAW_DESERIALIZE_STATUS.message(err, method),
      safe: true,
      reachesCriu: false,
    };
  }
  return judge(decoded, env);
}

function encodedSize(call: HostileCall): number {
  switch (call.rpc) {
    case "Check":
      return CheckRequest.encode(call.request).finish().length;
    case "Dump":
      return DumpRequest.encode(call.request).finish().length;
    case "Restore":
      return RestoreRequest.encode(call.request).finish().length;
    case "GetCheckpoint":
    case "DeleteCheckpoint":
      return GetCheckpointRequest.encode(call.request).finish().length;
    case "Subscribe":
      return SubscribeRequest.encode(call.request).finish().length;
    case "Session":
      return Math.max(0, ...call.messages.map((m) => SessionRequest.encode(m).finish().length));
    case "Raw":
      return call.bytes.length;
    default:
      return 0;
  }
}

function escapeLikeGateway(quoted: string): string {
  return quoted.replace(
    /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function haystackOf(call: HostileCall): string {
  const parts: string[] = [];
  const walk = (v: unknown) => {
    // Messages may quote a string whole or cut (the gateway shows the first 64 characters of an id).
    if (typeof v === "string") {
      parts.push(v, JSON.stringify(v), JSON.stringify(v.slice(0, 64)));
      // The gateway also escapes DEL, C1 controls and bidi overrides when it quotes a string.
      parts.push(escapeLikeGateway(JSON.stringify(v)), escapeLikeGateway(JSON.stringify(v.slice(0, 64))));
    } else if (Array.isArray(v)) for (const x of v) walk(x);
    else if (Buffer.isBuffer(v)) parts.push(v.toString("latin1"), v.toString("utf8"));
    else if (v && typeof v === "object") for (const x of Object.values(v)) walk(x);
  };
  walk(call);
  // Raw bytes: what the server's decoder makes of them is what a message may quote.
  if (call.rpc === "Raw") {
    const decode = DECODERS[call.path.slice(SERVICE.length)];
    try {
      if (decode && call.bytes.length <= 1 << 20) walk(decode(call.bytes));
    } catch {
      // Undecodable: grpc-js answers with a fixed message.
    }
  }
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Raw protobuf building blocks

function varint(n: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function tag(field: number, wire: number): Buffer {
  return varint((field << 3) | wire);
}

function lenField(field: number, body: Buffer): Buffer {
  return Buffer.concat([tag(field, 2), varint(body.length), body]);
}

function varintField(field: number, value: bigint | number): Buffer {
  return Buffer.concat([tag(field, 0), varint(value)]);
}

/** CriuOptions' reserved numbers: fds and paths of the caller that CRIU would use. */
const RESERVED_FD_FIELDS = [1, 17, 27, 49, 62] as const;
const RESERVED_PATH_FIELDS = [14, 68] as const;

// ---------------------------------------------------------------------------------------------
// The generator

export interface GenerateOptions {
  seed?: number;
  /** At least this many cases. */
  count?: number;
  /** Cases that run a CRIU CHECK worker (each costs a `criu check`). */
  checkThroughCriu?: number;
}

export function generateHostileCases(env: HostileEnv, opts: GenerateOptions = {}): HostileCase[] {
  const rng = new Rng(opts.seed ?? 0x5eed19);
  const count = opts.count ?? 10_500;
  const cases: HostileCase[] = [];
  const refusedPids = (): number[] => [
    0,
    -1,
    -(2 ** 31),
    -rng.int(2, 2 ** 31 - 1),
    env.pidMax + 1,
    rng.int(env.pidMax + 1, 2 ** 31 - 1),
    2 ** 31 - 1,
    4194305,
    env.gatewayPid,
    rng.pick(env.ancestors),
  ];

  const add = (label: string, call: HostileCall): void => {
    const j = judge(call, env);
    if (!j.safe) throw new Error(`generated an unsafe ${label} case: ${JSON.stringify(call).slice(0, 300)}`);
    let accept = j.accept;
    let exactMessage = (j as { exactMessage?: string }).exactMessage;
    if (encodedSize(call) > env.maxReceiveMessageBytes) {
      accept = new Set([RE]);
      exactMessage = undefined;
    }
    if (accept.has(status.INTERNAL) && exactMessage === undefined) {
      throw new Error(`the oracle accepted INTERNAL for ${label}`);
    }
    cases.push({
      index: cases.length,
      label,
      call,
      accept,
      ...(exactMessage === undefined ? {} : { exactMessage }),
      haystack: haystackOf(call),
      reachesCriu: j.reachesCriu && !accept.has(RE),
    });
  };

  /** A pid the gateway must refuse; ancestors get leave_running, in case it ever did not. */
  const refusedPidOptions = (): Partial<CriuOptions> => {
    const choice = rng.pick([undefined, ...refusedPids()]);
    if (choice === undefined) return {};
    return choice === env.gatewayPid || env.ancestors.includes(choice)
      ? { pid: choice, leaveRunning: true }
      : { pid: choice };
  };
  const dump = (checkpointId: string, options: CriuOptions, parentCheckpointId = ""): DumpRequest => ({
    checkpointId,
    options,
    parentCheckpointId,
  });

  // 1. Bad (and borderline valid) checkpoint ids on every RPC that takes one.
  const ids = [...FIXED_IDS];
  for (let i = 0; i < 700; i++) ids.push(generatedId(rng));
  for (const id of ids) {
    add("id:GetCheckpoint", { rpc: "GetCheckpoint", request: { checkpointId: id } });
    add("id:DeleteCheckpoint", { rpc: "DeleteCheckpoint", request: { checkpointId: id } });
    add("id:Restore", { rpc: "Restore", request: { checkpointId: id, options: undefined } });
    add("id:Dump", { rpc: "Dump", request: dump(id, mergeOptions([refusedPidOptions()])) });
    add("parent:Dump", {
      rpc: "Dump",
      request: dump(
        rng.chance(0.5) ? "hostile-ok" : generatedId(rng),
        mergeOptions([refusedPidOptions()]),
        id,
      ),
    });
  }
  // 1 MiB ids (under the 4 MiB limit) and ids over it.
  for (const rpc of ["GetCheckpoint", "DeleteCheckpoint"] as const) {
    add(`id-1MiB:${rpc}`, { rpc, request: { checkpointId: "a".repeat(1 << 20) } });
    add(`id-1MiB:${rpc}`, { rpc, request: { checkpointId: "/../".repeat(1 << 18) } });
    add(`id-5MiB:${rpc}`, { rpc, request: { checkpointId: "a".repeat(5 << 20) } });
  }
  add("id-1MiB:Dump", { rpc: "Dump", request: dump("../".repeat(350_000), mergeOptions([{ pid: -1 }])) });
  add("id-1MiB:Restore", {
    rpc: "Restore",
    request: { checkpointId: "\0".repeat(1 << 20), options: undefined },
  });
  add("parent-1MiB:Dump", {
    rpc: "Dump",
    request: dump("hostile-ok", mergeOptions([{ pid: env.pidMax + 7 }]), "x".repeat(1 << 20)),
  });

  // 2. Never-class options, alone and mixed with valid ones, on every RPC that takes options.
  for (const name of NEVER_NAMES) {
    const make = NEVER_OPTION_MAKERS[name]!;
    for (let i = 0; i < 30; i++) {
      const mixed = i % 2 === 1;
      const parts = [make(rng), ...(mixed ? allowedOptions(rng, rng.int(1, 5)) : [])];
      if (mixed && rng.chance(0.3)) parts.push(NEVER_OPTION_MAKERS[rng.pick(NEVER_NAMES)]!(rng));
      const kind = mixed ? "mixed" : "alone";
      add(`never-${kind}:Check`, { rpc: "Check", request: { options: mergeOptions(parts) } });
      add(`never-${kind}:Restore`, {
        rpc: "Restore",
        request: {
          checkpointId: rng.chance(0.5) ? "hostile-ok" : generatedId(rng),
          options: mergeOptions(parts),
        },
      });
      add(`never-${kind}:Dump`, {
        rpc: "Dump",
        request: dump(
          rng.chance(0.5) ? "hostile-ok" : generatedId(rng),
          mergeOptions([...parts, refusedPidOptions()]),
        ),
      });
      if (i % 3 === 0) {
        add(`never-${kind}:Session`, {
          rpc: "Session",
          messages: [
            {
              start: {
                dump: dump("hostile-ok", mergeOptions([...parts, refusedPidOptions()])),
                callbackTimeoutMs: 0,
              },
            },
          ],
        });
        add(`never-${kind}:Session`, {
          rpc: "Session",
          messages: [
            {
              start: {
                restore: { checkpointId: "hostile-ok", options: mergeOptions(parts) },
                callbackTimeoutMs: 1,
              },
            },
          ],
        });
      }
    }
  }

  // 3. Values out of range, alone and mixed.
  for (let i = 0; i < 240; i++) {
    const parts = [rng.pick(OUT_OF_RANGE_MAKERS)(rng), ...allowedOptions(rng, rng.int(0, 4))];
    add("range:Check", { rpc: "Check", request: { options: mergeOptions(parts) } });
    add("range:Restore", {
      rpc: "Restore",
      request: {
        checkpointId: rng.chance(0.5) ? "hostile-ok" : generatedId(rng),
        options: mergeOptions(parts),
      },
    });
    add("range:Dump", {
      rpc: "Dump",
      request: dump(
        rng.chance(0.5) ? "hostile-ok" : generatedId(rng),
        mergeOptions([...parts, refusedPidOptions()]),
      ),
    });
  }

  // 4. Pids: missing, zero, negative, beyond pid_max, the gateway itself and each of its ancestors.
  for (const [i, pid] of env.ancestors.entries()) {
    add("pid-ancestor:Dump", {
      rpc: "Dump",
      request: dump(`hostile-ancestor-${i}`, mergeOptions([{ pid, leaveRunning: true }])),
    });
  }
  for (let i = 0; i < 40; i++) {
    for (const pid of [undefined, ...refusedPids()]) {
      const options = mergeOptions([
        pid === undefined ? {} : { pid },
        // leave_running on the gateway's own tree, in case it were ever not refused.
        pid === env.gatewayPid || (pid !== undefined && env.ancestors.includes(pid))
          ? { leaveRunning: true }
          : {},
        ...(i % 2 === 0 ? [] : allowedOptions(rng, rng.int(1, 3))),
      ]);
      add("pid:Dump", { rpc: "Dump", request: dump(`hostile-pid-${i}`, options) });
      if (i % 8 === 0) {
        add("pid:Session", {
          rpc: "Session",
          messages: [{ start: { dump: dump(`hostile-pid-${i}`, options), callbackTimeoutMs: 0 } }],
        });
      }
    }
  }

  // 5. Huge repeated fields: 100,000 externals under the 4 MiB limit, and over it.
  const externals = Array.from({ length: 100_000 }, (_, i) => `mnt[/hostile/${i}]:x`);
  const bigExternals = Array.from({ length: 100_000 }, (_, i) => `mnt[/${"h".repeat(40)}/${i}]:x`);
  add("huge:Dump", {
    rpc: "Dump",
    request: dump("../huge", mergeOptions([{ pid: -1, external: externals }])),
  });
  add("huge:Restore", {
    rpc: "Restore",
    request: { checkpointId: "huge", options: mergeOptions([{ external: externals }]) },
  });
  add("huge-over-4MiB:Dump", {
    rpc: "Dump",
    request: dump("huge", mergeOptions([{ pid: env.pidMax + 1, external: bigExternals }])),
  });
  add("huge-over-4MiB:Check", {
    rpc: "Check",
    request: { options: mergeOptions([{ external: bigExternals }]) },
  });
  add("huge-never:Check", {
    rpc: "Check",
    request: { options: mergeOptions([{ skipMnt: externals, execCmd: ["/bin/true"] }]) },
  });
  for (const n of [1_000, 5_000, 10_000, 100_000]) {
    add("huge:Check", {
      rpc: "Check",
      request: { options: mergeOptions([{ external: externals.slice(0, n) }]) },
    });
  }
  add("huge-veths:Dump", {
    rpc: "Dump",
    request: dump(
      "hostile-veths",
      mergeOptions([
        { pid: -7, veths: Array.from({ length: 50_000 }, (_, i) => ({ ifIn: `v${i}`, ifOut: "/etc" })) },
      ]),
    ),
  });
  add("huge:Subscribe", {
    rpc: "Subscribe",
    request: { kinds: Array.from({ length: 200_000 }, (_, i) => i % 7), pid: 0, checkpointId: "" },
  });

  // 6. Sessions that break the protocol, and Subscribe filters that are refused.
  for (let i = 0; i < 60; i++) {
    add("session:no-start", { rpc: "Session", messages: [] });
    add("session:reply-first", {
      rpc: "Session",
      messages: [
        {
          notifyReply: { sequence: rng.int(0, 2 ** 31), success: rng.chance(0.5), external: strings(rng, 2) },
        },
      ],
    });
    add("session:empty-start", {
      rpc: "Session",
      messages: [{ start: { callbackTimeoutMs: rng.int(0, 2 ** 32 - 1) } }],
    });
    add("session:bad-id", {
      rpc: "Session",
      messages: [
        {
          start: rng.chance(0.5)
            ? { dump: dump(generatedId(rng), mergeOptions([refusedPidOptions()])), callbackTimeoutMs: 0 }
            : {
                restore: { checkpointId: generatedId(rng), options: undefined },
                callbackTimeoutMs: 2 ** 32 - 1,
              },
        },
        ...(rng.chance(0.3) ? [{ notifyReply: { sequence: 1, success: true, external: [] } }] : []),
      ],
    });
    add("subscribe:bad-kind", {
      rpc: "Subscribe",
      request: {
        kinds: [
          rng.pick(SUBSCRIBE_KINDS),
          rng.pick([0, Math.max(...SUBSCRIBE_KINDS) + 1, 999, -1, 2 ** 31 - 1, -(2 ** 31)]),
        ],
        pid: rng.int(0, 1000),
        checkpointId: generatedId(rng),
      },
    });
    add("subscribe:negative-pid", {
      rpc: "Subscribe",
      request: { kinds: [], pid: rng.pick([-1, -(2 ** 31), -rng.int(2, 2 ** 31 - 1)]), checkpointId: "" },
    });
  }

  // 7. Raw bytes, sent as they are.
  const pathOf = (m: string) => `${SERVICE}${m}`;
  const rawMethods = Object.keys(DECODERS);
  const addRaw = (label: string, method: string, bytes: Buffer) => {
    const call: HostileCall = { rpc: "Raw", path: pathOf(method), bytes };
    if (!judge(call, env).safe) return false;
    add(label, call);
    return true;
  };
  // Valid encodings of structured cases, truncated at every kind of boundary. (Not those that
  // carry the gateway's or an ancestor's pid: those change from run to run, and so would the cuts.)
  const runtimePids = new Set([env.gatewayPid, ...env.ancestors]);
  const encodable = cases.filter(
    (c) =>
      (c.call.rpc === "Dump" && !runtimePids.has(c.call.request.options?.pid ?? 0)) ||
      c.call.rpc === "Restore" ||
      c.call.rpc === "Check",
  );
  for (let i = 0; i < 900; i++) {
    const source = rng.pick(encodable).call;
    let method: string;
    let full: Uint8Array;
    if (source.rpc === "Dump") [method, full] = ["Dump", DumpRequest.encode(source.request).finish()];
    else if (source.rpc === "Restore")
      [method, full] = ["Restore", RestoreRequest.encode(source.request).finish()];
    else if (source.rpc === "Check") [method, full] = ["Check", CheckRequest.encode(source.request).finish()];
    else continue;
    if (full.length < 2 || full.length > 1 << 16) continue;
    addRaw("raw:truncated", method, Buffer.from(full.subarray(0, rng.int(1, full.length - 1))));
  }
  // Random bytes to every method; empty-message RPCs run a worker when the bytes happen to decode.
  for (let i = 0; i < 1400; i++) {
    const method =
      i < 120
        ? rng.pick(["Version", "FeatureCheck"])
        : rng.pick(rawMethods.filter((m) => m !== "Version" && m !== "FeatureCheck"));
    addRaw("raw:random", method, rng.bytes(rng.int(1, 64)));
  }
  // Unknown fields carrying fd numbers or paths in CriuOptions' reserved numbers (and ps.fd).
  for (let i = 0; i < 600; i++) {
    const field = rng.pick([...RESERVED_FD_FIELDS, ...RESERVED_PATH_FIELDS, 4000]);
    const smuggled =
      field === 14 || field === 68
        ? lenField(field, Buffer.from(rng.pick(["/tmp/hostile-images", "/", "../..", "/proc/self/cwd"])))
        : varintField(field, rng.pick([0, 1, 2, 3, rng.int(0, 1023), -1, 2 ** 32 + 3]));
    const psFd = rng.chance(0.2) ? lenField(11, varintField(4, rng.int(0, 1023))) : Buffer.alloc(0);
    const options = Buffer.concat([smuggled, psFd, ...(rng.chance(0.5) ? [varintField(9, 4)] : [])]);
    const target = i % 3;
    if (target === 0) {
      addRaw(
        "raw:fd-field",
        "Dump",
        Buffer.concat([
          lenField(1, Buffer.from(rng.pick(["hostile-fd", "../fd"]))),
          lenField(2, Buffer.concat([options, varintField(2, rng.pick(refusedPids()))])),
        ]),
      );
    } else if (target === 1) {
      addRaw(
        "raw:fd-field",
        "Restore",
        Buffer.concat([lenField(1, Buffer.from("hostile-fd")), lenField(2, options)]),
      );
    } else {
      // Check would run CRIU: only a few of these, plus a never-option for the rest.
      const never = i > 60 ? lenField(22, Buffer.from("/bin/sh")) : Buffer.alloc(0);
      addRaw("raw:fd-field", "Check", lenField(1, Buffer.concat([options, never])));
    }
  }
  // Wrong wire types for known fields (a string sent as a varint, a message as fixed32…).
  for (let i = 0; i < 300; i++) {
    const method = rng.pick(["Dump", "Restore", "GetCheckpoint", "DeleteCheckpoint"]);
    const field = rng.int(1, 3);
    const wire = rng.pick([0, 1, 5, 3, 4, 6, 7]);
    let body: Buffer;
    if (wire === 0) body = varint(rng.int(0, 2 ** 31));
    else if (wire === 1) body = rng.bytes(8);
    else if (wire === 5) body = rng.bytes(4);
    else body = Buffer.alloc(0);
    const prefix = method === "Dump" ? lenField(2, varintField(2, -1)) : Buffer.alloc(0);
    addRaw("raw:wire-type", method, Buffer.concat([prefix, tag(field, wire), body]));
  }
  // Deeply nested garbage: groups and length-delimited fields within each other.
  for (let i = 0; i < 40; i++) {
    const depth = rng.pick([100, 1000, 10_000, 100_000, 1_000_000]);
    const method = rng.pick(["Dump", "Check", "Restore", "GetCheckpoint"]);
    if (i % 2 === 0) {
      addRaw("raw:nested-groups", method, Buffer.alloc(depth, 0x0b)); // field 1, start group, again and again
    } else {
      let inner: Buffer = Buffer.from([0x08, 0x01]);
      for (let d = 0; d < Math.min(depth, 2000); d++) inner = lenField(2, inner);
      addRaw("raw:nested-messages", method, inner);
    }
  }
  // Length prefixes larger than what follows (up to 2^64-1), and bytes beyond 4 MiB.
  for (let i = 0; i < 200; i++) {
    const method = rng.pick(rawMethods);
    const claimed = rng.pick([
      2n ** 31n,
      2n ** 32n - 1n,
      2n ** 63n,
      2n ** 64n - 1n,
      BigInt(rng.int(10, 1 << 20)),
    ]);
    addRaw(
      "raw:length-prefix",
      method,
      Buffer.concat([tag(rng.int(1, 3), 2), varint(claimed), rng.bytes(rng.int(0, 8))]),
    );
  }
  for (const method of ["Dump", "Version", "GetCheckpoint"]) {
    addRaw("raw:over-4MiB", method, Buffer.alloc(env.maxReceiveMessageBytes + 1, 0xff));
  }
  addRaw(
    "raw:exactly-4MiB",
    "GetCheckpoint",
    Buffer.concat([lenField(1, Buffer.alloc(env.maxReceiveMessageBytes - 5, 0x2f))]),
  );
  for (let i = 0; i < 20; i++) {
    addRaw("raw:unknown-method", rng.pick(["Nope", "dump", "Dump/../Version", ""]), rng.bytes(4));
  }

  // 8. A few Check requests with hostile admin values that do reach CRIU.
  for (let i = 0; i < (opts.checkThroughCriu ?? 12); i++) {
    add("criu:Check", {
      rpc: "Check",
      request: { options: mergeOptions(allowedOptions(rng, rng.int(1, 4))) },
    });
  }
  // Enum values the API does not define, with nothing else wrong: only the gateway can refuse these.
  for (const o of [
    { manageCgroupsMode: 99 },
    { manageCgroupsMode: 7 },
    { networkLock: 4 },
    { preDumpMode: 3 },
  ]) {
    add("range-only:Check", { rpc: "Check", request: { options: mergeOptions([o]) } });
  }

  // 9. Mixed hostile requests until there are enough.
  while (cases.length < count) {
    const parts = allowedOptions(rng, rng.int(0, 5));
    const flavour = rng.int(0, 2);
    if (flavour === 0) parts.push(NEVER_OPTION_MAKERS[rng.pick(NEVER_NAMES)]!(rng));
    if (flavour === 1) parts.push(rng.pick(OUT_OF_RANGE_MAKERS)(rng));
    const rpc = rng.pick(["Dump", "Restore", "Check", "Session"] as const);
    const id = rng.chance(0.3) ? `hostile-${cases.length}` : generatedId(rng);
    if (rpc === "Check") {
      // Keep CRIU out of it: a never option or a bad value is in every mixed Check.
      if (flavour === 2) parts.push(NEVER_OPTION_MAKERS[rng.pick(NEVER_NAMES)]!(rng));
      add("mixed:Check", { rpc, request: { options: mergeOptions(parts) } });
    } else if (rpc === "Restore") {
      add("mixed:Restore", { rpc, request: { checkpointId: id, options: mergeOptions(parts) } });
    } else if (rpc === "Dump") {
      add("mixed:Dump", {
        rpc,
        request: dump(
          id,
          mergeOptions([...parts, refusedPidOptions()]),
          rng.chance(0.2) ? generatedId(rng) : "",
        ),
      });
    } else {
      add("mixed:Session", {
        rpc,
        messages: [
          { start: { dump: dump(id, mergeOptions([...parts, refusedPidOptions()])), callbackTimeoutMs: 0 } },
        ],
      });
    }
  }
  return cases;
}
