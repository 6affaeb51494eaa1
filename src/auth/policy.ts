// The security policy: which identities may call which RPCs, on which processes and checkpoints,
// with which option classes and within which limits; and the questions asked of it. The policy
// file's parser is parsePolicy.ts.

import type { OptionClass } from "../domain/criuOptions.js";
import type { ProcessRecord } from "../domain/processTree.js";
import type { Identity } from "./identity.js";

export type CheckpointAccess = "read" | "write" | "delete";

/** What one selector requires of an identity; every key given must match. */
export interface IdentitySelector {
  unixUid?: number;
  unixGid?: number;
  certCn?: string;
  certSan?: string;
  forwardedName?: string;
  anonymous?: true;
}

export interface ProcessGrant {
  /** Every process on the host. */
  any: boolean;
  uids: readonly number[];
  /** cgroup v2 path prefixes, matched on whole path components. */
  cgroups: readonly string[];
  /** Inclusive pid ranges. */
  pids: readonly (readonly [number, number])[];
}

export interface Limits {
  /** CRIU operations (calls that run a worker) at once. */
  concurrentOperations?: number;
  /** Subscribe streams at once. */
  subscribers?: number;
  /** Bytes of one request message (each message of a Session), on the wire. */
  maxRequestBytes?: number;
}

export interface Grant {
  name: string;
  identities: readonly IdentitySelector[];
  admin: boolean;
  /** RPC names (as in the proto), or every RPC. */
  rpcs: ReadonlySet<string> | "all";
  processes: ProcessGrant;
  /** Checkpoint id prefixes per access, or every checkpoint. */
  checkpoints: Record<CheckpointAccess, readonly string[] | "all">;
  optionClasses: ReadonlySet<OptionClass>;
  limits: Limits;
}

export interface ForwardedIdentityConfig {
  /** The header a trusted proxy puts the caller's identity in (lower case). */
  header: string;
  /** Peers whose header is believed; anyone else sending it is refused. */
  trustedPeers: readonly IdentitySelector[];
}

export interface Policy {
  /** Where it came from, for logs ("built-in default" or a file path). */
  source: string;
  /** In order: the first grant with a matching selector applies. */
  grants: readonly Grant[];
  forwarded: ForwardedIdentityConfig | undefined;
  /** Totals over all callers. */
  limits: Limits;
}

const ADMIN_CLASSES: ReadonlySet<OptionClass> = new Set(["safe", "admin"]);
/** What a grant without a processes section covers. */
export const NO_PROCESSES: ProcessGrant = { any: false, uids: [], cgroups: [], pids: [] };
const ALL_PROCESSES: ProcessGrant = { any: true, uids: [], cgroups: [], pids: [] };

/** Root on a unix socket is an administrator; nobody else may do anything. */
export function defaultPolicy(): Policy {
  return {
    source: "built-in default (root on a unix socket is admin; nobody else may do anything)",
    grants: [adminGrant("root", [{ unixUid: 0 }], {})],
    forwarded: undefined,
    limits: {},
  };
}

/** A grant that may do everything, for these identities and within these limits. */
export function adminGrant(name: string, identities: IdentitySelector[], limits: Limits): Grant {
  return {
    name,
    identities,
    admin: true,
    rpcs: "all",
    processes: ALL_PROCESSES,
    checkpoints: { read: "all", write: "all", delete: "all" },
    optionClasses: ADMIN_CLASSES,
    limits,
  };
}

export function selectorMatches(selector: IdentitySelector, identity: Identity): boolean {
  const checks: boolean[] = [];
  if (selector.unixUid !== undefined)
    checks.push(identity.kind === "unix" && identity.uid === selector.unixUid);
  if (selector.unixGid !== undefined)
    checks.push(identity.kind === "unix" && identity.gid === selector.unixGid);
  if (selector.certCn !== undefined)
    checks.push(identity.kind === "certificate" && identity.commonName === selector.certCn);
  if (selector.certSan !== undefined)
    checks.push(identity.kind === "certificate" && identity.sans.includes(selector.certSan));
  if (selector.forwardedName !== undefined)
    checks.push(identity.kind === "forwarded" && identity.names.includes(selector.forwardedName));
  if (selector.anonymous) checks.push(identity.kind === "anonymous");
  return checks.length > 0 && checks.every(Boolean);
}

/** The grant that applies to an identity, or undefined when the policy gives it nothing. */
export function grantFor(policy: Policy, identity: Identity): Grant | undefined {
  return policy.grants.find((g) => g.identities.some((s) => selectorMatches(s, identity)));
}

export function isTrustedForwarder(policy: Policy, identity: Identity): boolean {
  return policy.forwarded?.trustedPeers.some((s) => selectorMatches(s, identity)) ?? false;
}

/** The most bytes one request of this grant's callers may have: its own limit and the policy's. */
export function maxRequestBytes(policy: Policy, grant: Grant): number | undefined {
  const limits = [grant.limits.maxRequestBytes, policy.limits.maxRequestBytes].filter(
    (n): n is number => n !== undefined,
  );
  return limits.length === 0 ? undefined : Math.min(...limits);
}

export function allowsRpc(grant: Grant, rpc: string): boolean {
  return grant.rpcs === "all" || grant.rpcs.has(rpc);
}

export function allowsCheckpoint(grant: Grant, checkpointId: string, access: CheckpointAccess): boolean {
  const prefixes = grant.checkpoints[access];
  return prefixes === "all" || prefixes.some((p) => checkpointId.startsWith(p));
}

/** Why a process is outside the grant, or undefined when the grant covers it. */
export function processDenial(grant: Grant, process: ProcessRecord): string | undefined {
  const p = grant.processes;
  if (p.any) return undefined;
  if (p.pids.some(([lo, hi]) => process.pid >= lo && process.pid <= hi)) return undefined;
  if (process.cgroup && p.cgroups.some((prefix) => underCgroup(process.cgroup, prefix))) return undefined;
  const uid = [...new Set(process.uids)].join("/");
  if (process.uids.length > 0 && process.uids.every((u) => p.uids.includes(u))) {
    const gained = privilegesBeyondUser(process);
    if (gained === undefined) return undefined;
    return `pid ${process.pid} runs as uid ${uid} but ${gained}, which a grant by uid does not cover (grant "${grant.name}")`;
  }
  return `pid ${process.pid} (uid ${uid || "unknown"}, cgroup ${process.cgroup || "none"}) is outside grant "${grant.name}"`;
}

/**
 * How a process of a non-root user holds more than its user may have, the way the kernel's ptrace
 * check sees it: a group its user was not given (a setgid program), capabilities (file or ambient
 * ones), or a non-dumpable mark (setuid programs, key agents). A grant of a uid is a grant of what
 * that user could trace itself; such processes are not. Undefined when none applies or the record
 * cannot tell.
 */
export function privilegesBeyondUser(process: ProcessRecord): string | undefined {
  if (process.uids.every((u) => u === 0)) return undefined;
  const gids = process.gids ?? [];
  if (new Set(gids).size > 1)
    return `its gids differ (${gids.join("/")}): it runs with a group it was not given`;
  if (process.capEff && /[1-9a-f]/.test(process.capEff))
    return `it holds capabilities (CapEff ${process.capEff})`;
  if (process.dumpable === false) return "it made itself non-dumpable";
  return undefined;
}

function underCgroup(path: string, prefix: string): boolean {
  if (prefix === "/") return true;
  return path === prefix || path.startsWith(`${prefix}/`);
}
