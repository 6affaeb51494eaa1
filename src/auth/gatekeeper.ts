// Who may do what, with the policy in force: identifies a caller from what its transport proved,
// admits calls against the caller's grant, counts them against the limits, and writes the audit
// line. A policy reload takes effect for calls from then on, and open streams are judged again.
import { GatewayError, permissionDenied } from "../domain/errors.js";
import { type AccessRequest, type Admission, admit, type CheckpointFacts } from "./admission.js";
import type { AuditRecord } from "./auditLog.js";
import {
  type CertificateIdentity,
  describeIdentity,
  type Identity,
  identityKey,
  type UnixIdentity,
} from "./identity.js";
import { allowsRpc, type Grant, grantFor, isTrustedForwarder, type Policy } from "./policy.js";
import { Slots } from "./slots.js";

/** What a transport proved on its own: the kernel's word on a unix socket, or a verified certificate. */
export type TransportIdentity = UnixIdentity | CertificateIdentity | { kind: "anonymous" };

/** The forwarded-identity header as a call carried it. */
export interface ForwardedClaim {
  /** How many times the header appeared. */
  count: number;
  /** The names its one value gives (none when it appeared more than once). */
  names: readonly string[];
}

export interface GatekeeperDeps extends CheckpointFacts {
  policy: Policy;
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

  /** The header the policy takes forwarded identities from, if it trusts any proxy. */
  get forwardedHeader(): string | undefined {
    return this.#policy.forwarded?.header;
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
   * The caller, from what its transport proved and the forwarded header: a forwarded identity is
   * believed only from a proxy the policy trusts, and a trusted proxy's call without the header is
   * anonymous (a proxy speaks for its clients, never for itself). Throws when the header is refused.
   */
  identify(direct: TransportIdentity, claim: ForwardedClaim | undefined): Identity {
    const forwarded = this.#policy.forwarded;
    if (!forwarded || !claim) return direct;
    const trusted = direct.kind !== "anonymous" && isTrustedForwarder(this.#policy, direct);
    if (claim.count === 0) return trusted ? { kind: "anonymous", via: direct } : direct;
    if (!trusted) {
      throw permissionDenied(
        `the ${forwarded.header} header is believed only from the proxies the policy trusts, and ${describeIdentity(direct)} is not one of them`,
      );
    }
    if (claim.count > 1) {
      throw new GatewayError("UNAUTHENTICATED", `the ${forwarded.header} header must appear once`);
    }
    if (claim.names.length === 0) {
      throw new GatewayError(
        "UNAUTHENTICATED",
        `the ${forwarded.header} header from the trusted proxy names nobody (no URI, DNS or subject CN)`,
      );
    }
    return { kind: "forwarded", names: [...claim.names], via: direct };
  }

  /**
   * Checks one call against the identity's grant (a Session as itself and as what it runs);
   * throws PERMISSION_DENIED or RESOURCE_EXHAUSTED.
   */
  async admit(identity: Identity, rpcs: readonly string[], access: AccessRequest): Promise<Admission> {
    const policy = this.#policy;
    const grant = grantFor(policy, identity);
    if (!grant)
      throw permissionDenied(`no grant of the gateway's policy matches ${describeIdentity(identity)}`);
    return admit(policy, identity, grant, rpcs, access, this.deps, () =>
      this.#acquireOperation(identity, grant),
    );
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
