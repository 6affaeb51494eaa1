// Who may do what. For every call: identify the caller from what its transport proved, find the
// policy's grant, check the RPC, the checkpoints, the option classes and the processes before any
// worker starts, count it against the concurrency limits, and write its audit line.
import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import type { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import { type OptionClass, optionClassesUsed } from "../domain/criuOptions.js";
import { GatewayError, permissionDenied } from "../domain/errors.js";
import {
  type CertificateIdentity,
  describeIdentity,
  forwardedNames,
  type Identity,
  type UnixIdentity,
} from "../domain/identity.js";
import { ImageStore } from "../domain/imageStore.js";
import {
  allowsCheckpoint,
  allowsRpc,
  type CheckpointAccess,
  type Grant,
  grantFor,
  isTrustedForwarder,
  maxRequestBytes,
  type Policy,
  processDenial,
} from "../domain/policy.js";
import { type ProcessRecord, processTree, readProcess } from "../domain/processTree.js";
import type { UnixPeers } from "./unixListener.js";

/** What of a grpc-js call tells who is calling. */
export interface CallTransport {
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
  metadata: Metadata;
}

/** What a call would touch, for the policy to judge before anything runs. */
export interface AccessRequest {
  checkpoints?: readonly { id: string; access: CheckpointAccess }[];
  /** The root of the tree a dump would cover: every process in it must be granted. */
  dumpRoot?: number;
  /** One process the call touches. */
  pid?: number;
  /** A restore: the processes recorded with this checkpoint must be granted. */
  restoreOf?: string;
  /** A dump's or pre-dump's parent checkpoint, whose memory may pass into the new one. */
  parent?: string;
  options?: CriuOptions;
  /** The call runs a CRIU worker: it counts against the concurrency limits. */
  operation?: boolean;
  /** The request's size on the wire, for the grant's request size limit. */
  requestBytes?: number;
}

/** A call let in: who it is, what it may do further, and its slot to give back. */
export interface Admission {
  identity: Identity;
  grant: Grant;
  /** Reads a frozen dump's tree and refuses it when any process is outside the grant. */
  frozenTree(rootPid: number): Promise<ProcessRecord[]>;
  canRead(checkpointId: string): boolean;
  /** Refuses a further message of the call (a Session's) larger than the grant allows. */
  checkSize(requestBytes: number | undefined): void;
  release(): void;
}

export interface AuditRecord {
  rpc: string;
  identity: string;
  grant: string | undefined;
  pid: number | undefined;
  checkpoint: string | undefined;
  optionClasses: OptionClass[];
  /** The gRPC status code's name ("OK", "PERMISSION_DENIED", …). */
  result: string;
  durationMs: number;
  error?: string;
}

export interface GatekeeperDeps {
  policy: Policy;
  unixPeers: UnixPeers;
  /** The processes a checkpoint recorded, for restores. */
  recordedProcesses(checkpointId: string): Promise<ProcessRecord[] | undefined>;
  /** A checkpoint and its ancestors, itself first; empty when it does not exist. */
  lineage(checkpointId: string): Promise<readonly { id: string; importedImages: boolean }[]>;
  audit(record: AuditRecord): void;
}

export class Gatekeeper {
  #policy: Policy;
  readonly #running = new Slots();
  readonly #subscribers = new Slots();
  readonly #watchers = new Set<() => void>();

  constructor(private readonly deps: GatekeeperDeps) {
    this.#policy = deps.policy;
  }

  get policy(): Policy {
    return this.#policy;
  }

  /**
   * Takes a new policy for calls from now on; calls already admitted keep their grant, but for
   * streams that watch for a change (onPolicyChange), which are judged again.
   */
  setPolicy(policy: Policy): void {
    this.#policy = policy;
    for (const watch of [...this.#watchers]) watch();
  }

  /** Calls `watch` after every policy change until the returned function is called. */
  onPolicyChange(watch: () => void): () => void {
    this.#watchers.add(watch);
    return () => this.#watchers.delete(watch);
  }

  /** The grant under the policy in force that lets this identity call `rpc`; PERMISSION_DENIED if none. */
  grantNow(identity: Identity, rpc: string): Grant {
    const grant = grantFor(this.#policy, identity);
    if (!grant) {
      throw permissionDenied(`the policy in force no longer has a grant for ${describeIdentity(identity)}`);
    }
    if (!allowsRpc(grant, rpc)) {
      throw permissionDenied(`the policy in force no longer allows ${rpc} to grant "${grant.name}"`);
    }
    return grant;
  }

  /** The name of the grant that applies to an identity now, for audit lines of refused calls. */
  grantName(identity: Identity): string | undefined {
    return grantFor(this.#policy, identity)?.name;
  }

  audit(record: AuditRecord): void {
    this.deps.audit(record);
  }

  /**
   * The caller of a call, from its transport; a forwarded identity only via a trusted proxy, and
   * a trusted proxy's call without the header is anonymous. A refused forwarded identity comes
   * back as the refusal, with the transport's identity for the audit line.
   */
  identifyOrRefuse(call: CallTransport): { identity: Identity; refusal?: unknown } {
    try {
      return { identity: this.#identify(call) };
    } catch (refusal) {
      return { identity: this.transportIdentity(call), refusal };
    }
  }

  #identify(call: CallTransport): Identity {
    const direct = this.transportIdentity(call);
    const forwarded = this.#policy.forwarded;
    if (!forwarded) return direct;
    const values = call.metadata.get(forwarded.header);
    const trusted = direct.kind !== "anonymous" && isTrustedForwarder(this.#policy, direct);
    // A trusted proxy speaks for its clients, never for itself: a call it forwards without the
    // header (e.g. from a client that showed it no certificate) is nobody's.
    if (values.length === 0) return trusted ? { kind: "anonymous", via: direct } : direct;
    if (!trusted) {
      throw permissionDenied(
        `the ${forwarded.header} header is believed only from the proxies the policy trusts, and ${describeIdentity(direct)} is not one of them`,
      );
    }
    if (values.length > 1) {
      throw new GatewayError("UNAUTHENTICATED", `the ${forwarded.header} header must appear once`);
    }
    const names = forwardedNames(forwarded.header, String(values[0]));
    if (names.length === 0) {
      throw new GatewayError(
        "UNAUTHENTICATED",
        `the ${forwarded.header} header from the trusted proxy names nobody (no URI, DNS or subject CN)`,
      );
    }
    return { kind: "forwarded", names, via: direct };
  }

  /** What the transport alone proved: for audit lines of calls whose forwarded identity was refused. */
  transportIdentity(call: CallTransport): UnixIdentity | CertificateIdentity | { kind: "anonymous" } {
    const unix = this.deps.unixPeers.lookup(call.getPeer());
    if (unix) return { kind: "unix", uid: unix.uid, gid: unix.gid, pid: unix.pid };
    const cert = call.getAuthContext().sslPeerCertificate;
    if (cert) {
      const cn = cert.subject?.CN;
      return {
        kind: "certificate",
        commonName: Array.isArray(cn) ? (cn[0] ?? "") : (cn ?? ""),
        sans: parseSubjectAltNames(cert.subjectaltname ?? ""),
      };
    }
    return { kind: "anonymous" };
  }

  /** Checks one call against the identity's grant; throws PERMISSION_DENIED or RESOURCE_EXHAUSTED. */
  async admit(
    identity: Identity,
    rpcs: string | readonly string[],
    access: AccessRequest,
  ): Promise<Admission> {
    const policy = this.#policy;
    const grant = grantFor(policy, identity);
    if (!grant)
      throw permissionDenied(`no grant of the gateway's policy matches ${describeIdentity(identity)}`);
    const sizeLimit = maxRequestBytes(policy, grant);
    const checkSize = (size: number | undefined) => {
      if (size !== undefined && sizeLimit !== undefined && size > sizeLimit) {
        throw new GatewayError(
          "RESOURCE_EXHAUSTED",
          `the request is ${size} bytes, more than the ${sizeLimit} the policy allows grant "${grant.name}"`,
        );
      }
    };
    checkSize(access.requestBytes);
    // A Session is checked as itself and as the dump or restore it runs.
    for (const rpc of typeof rpcs === "string" ? [rpcs] : rpcs) {
      if (!allowsRpc(grant, rpc)) throw permissionDenied(`grant "${grant.name}" does not allow ${rpc}`);
    }
    for (const { id, access: mode } of access.checkpoints ?? []) {
      ImageStore.validateId(id);
      if (!allowsCheckpoint(grant, id, mode)) {
        throw permissionDenied(`grant "${grant.name}" does not allow ${VERB[mode]} checkpoint ${id}`);
      }
    }
    await this.#checkDedup(grant, access);
    if (!grant.admin) {
      const classes = optionClassesUsed(access.options).filter((c) => c !== "never");
      const refused = classes.filter((c) => !grant.optionClasses.has(c));
      if (refused.length > 0) {
        throw permissionDenied(`grant "${grant.name}" does not allow ${refused.join(" or ")}-class options`);
      }
      await this.#checkProcesses(grant, access);
    }
    const release = access.operation ? this.#acquireOperation(identity, grant) : () => {};
    return {
      identity,
      grant,
      frozenTree: async (rootPid) => {
        const tree = await processTree(rootPid);
        if (!grant.admin) {
          for (const p of tree) {
            const denial = processDenial(grant, p);
            if (denial)
              throw permissionDenied(`the frozen tree under pid ${rootPid} holds ${denial}; dump refused`);
          }
        }
        return tree;
      },
      canRead: (id) => allowsCheckpoint(grant, id, "read"),
      checkSize,
      release,
    };
  }

  /** A Subscribe slot within the grant's and the policy's subscriber limits. */
  acquireSubscriber(identity: Identity, grant: Grant): () => void {
    return this.#subscribers.take(
      identityKey(identity),
      grant.limits.subscribers,
      this.#policy.limits.subscribers,
      {
        total: (n) => `the policy allows ${n} subscribers in all, and all are taken`,
        own: (n) =>
          `${describeIdentity(identity)} already has ${n} subscriptions, the most grant "${grant.name}" allows`,
      },
    );
  }

  /**
   * auto_dedup writes: a restore punches the pages it restores out of its checkpoint's images and
   * its ancestors', and a dump with a parent punches the pages it finds unchanged out of the
   * parent's and every ancestor's. So it needs write access to that whole chain, not just read.
   */
  async #checkDedup(grant: Grant, access: AccessRequest): Promise<void> {
    if (access.options?.autoDedup !== true || grant.checkpoints.write === "all") return;
    const from = access.restoreOf ?? access.parent;
    if (from === undefined) return;
    const ancestors = (await this.deps.lineage(from)).slice(1).map((c) => c.id);
    for (const id of [from, ...ancestors]) {
      if (!allowsCheckpoint(grant, id, "write")) {
        const what = access.restoreOf === undefined ? "finds unchanged" : "restores";
        throw permissionDenied(
          `grant "${grant.name}" does not allow writing checkpoint ${id}, which auto_dedup would change: CRIU punches the pages it ${what} out of checkpoint ${from}${ancestors.length > 0 ? " and every ancestor" : ""}. Leave auto_dedup unset`,
        );
      }
    }
  }

  async #checkProcesses(grant: Grant, access: AccessRequest): Promise<void> {
    const deny = (record: ProcessRecord, why: string) => {
      const denial = processDenial(grant, record);
      if (denial) throw permissionDenied(`${denial}; ${why}`);
    };
    if (access.dumpRoot !== undefined && Number.isInteger(access.dumpRoot) && access.dumpRoot > 0) {
      // A pid that does not exist is left to the operation, which says NOT_FOUND.
      for (const p of await processTree(access.dumpRoot)) {
        deny(p, `a dump covers the whole tree under pid ${access.dumpRoot}`);
      }
    }
    if (access.pid !== undefined && Number.isInteger(access.pid) && access.pid > 0) {
      const p = await readProcess(access.pid);
      if (p) deny(p, "the call would touch it");
    }
    if (access.restoreOf !== undefined) {
      const recorded = await this.deps.recordedProcesses(access.restoreOf);
      if (!recorded) {
        throw permissionDenied(
          `checkpoint ${access.restoreOf} has no record of the processes it holds, so only an administrator may restore it`,
        );
      }
      for (const p of recorded) deny(p, `checkpoint ${access.restoreOf} would re-create it`);
    }
    // Images a caller imported say whatever the caller wrote: restoring them, or dumping on top of
    // them (unchanged memory then comes from the parent), would pass them off as a granted tree.
    if (access.restoreOf !== undefined) {
      const source = await this.#importedIn(access.restoreOf);
      if (source) {
        throw permissionDenied(
          `checkpoint ${access.restoreOf} ${source === access.restoreOf ? "holds" : `descends from checkpoint ${source}, which holds`} images imported with ImportImages; CRIU would restore whatever they say, as root, so only an administrator may restore it`,
        );
      }
    }
    if (access.parent !== undefined) {
      const source = await this.#importedIn(access.parent);
      if (source) {
        throw permissionDenied(
          `parent checkpoint ${access.parent} ${source === access.parent ? "holds" : `descends from checkpoint ${source}, which holds`} images imported with ImportImages; a dump on it takes unchanged memory from them, so only an administrator may use it as a parent`,
        );
      }
    }
  }

  /** The checkpoint of `id`'s lineage that images were imported into, if any. */
  async #importedIn(id: string): Promise<string | undefined> {
    const chain = await this.deps.lineage(id);
    // The marker passes down to children; the oldest marked ancestor is the one imported into.
    return chain.filter((c) => c.importedImages).at(-1)?.id;
  }

  #acquireOperation(identity: Identity, grant: Grant): () => void {
    const own = grant.limits.concurrentOperations;
    return this.#running.take(identityKey(identity), own, this.#policy.limits.concurrentOperations, {
      total: (n) =>
        `the gateway already runs ${n} operations, the most its policy allows; retry when one finishes`,
      own: (n) =>
        `${describeIdentity(identity)} already runs ${n} operations, the most grant "${grant.name}" allows; retry when one finishes`,
    });
  }
}

/** Counted slots per key and in total, each limit optional; a slot is given back once. */
class Slots {
  readonly #byKey = new Map<string, number>();
  #total = 0;

  take(
    key: string,
    perKey: number | undefined,
    total: number | undefined,
    refusal: { total(n: number): string; own(n: number): string },
  ): () => void {
    const mine = this.#byKey.get(key) ?? 0;
    if (total !== undefined && this.#total >= total) {
      throw new GatewayError("RESOURCE_EXHAUSTED", refusal.total(this.#total));
    }
    if (perKey !== undefined && mine >= perKey)
      throw new GatewayError("RESOURCE_EXHAUSTED", refusal.own(mine));
    this.#byKey.set(key, mine + 1);
    this.#total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#total--;
      const left = (this.#byKey.get(key) ?? 1) - 1;
      if (left === 0) this.#byKey.delete(key);
      else this.#byKey.set(key, left);
    };
  }
}

const VERB: Record<CheckpointAccess, string> = { read: "reading", write: "writing", delete: "deleting" };

/** Limits count per person, not per connection: a unix caller is its uid, whatever its pid. */
function identityKey(identity: Identity): string {
  switch (identity.kind) {
    case "unix":
      return `unix:${identity.uid}`;
    case "certificate":
      return `cert:${identity.commonName}|${identity.sans.join(",")}`;
    case "forwarded":
      return `forwarded:${identity.names.join(",")}`;
    case "anonymous":
      return "anonymous";
  }
}

/**
 * Node's `subjectaltname` ("DNS:a.example, URI:spiffe://x/y, IP Address:10.0.0.1, email:a@b") as
 * bare values. Entries are joined by ", "; a value with a comma, quote, backslash, apostrophe or
 * control character is written as a JSON string (`URI:"spiffe://x/a\u002c b"`), so a comma
 * inside quotes never separates entries: otherwise a certificate's one URI SAN could carry
 * ", DNS:admin" and pass for a second name. Text that does not parse as that format yields no
 * names at all rather than a guess.
 */
export function parseSubjectAltNames(text: string): string[] {
  const names: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0 || /[",]/.test(text.slice(i, colon))) return [];
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (end >= text.length) return [];
      end++;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return [];
      }
    } else {
      const comma = text.indexOf(",", colon);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end).trim();
    }
    if (end < text.length) {
      if (text[end] !== ",") return [];
      end++;
      while (text[end] === " ") end++;
    }
    if (value.length > 0) names.push(value);
    i = end;
  }
  return names;
}
