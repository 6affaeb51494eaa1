// Who is calling: the identity the transport proved, in a form the policy can match and the audit
// log can print. Nothing here trusts anything the caller merely says.

/** A local caller on a unix socket, as the kernel recorded it when it connected (SO_PEERCRED). */
export interface UnixIdentity {
  kind: "unix";
  uid: number;
  gid: number;
  pid: number;
}

/** A caller that presented a client certificate the gateway's client CA verified (mutual TLS). */
export interface CertificateIdentity {
  kind: "certificate";
  /** The subject's common name, "" when the certificate has none. */
  commonName: string;
  /** Subject alternative names without their type: DNS names, URIs (SPIFFE ids), emails, IPs. */
  sans: string[];
}

/** A caller whose identity a trusted proxy (a mesh sidecar) vouched for in a header. */
export interface ForwardedIdentity {
  kind: "forwarded";
  /** The names the proxy gave: the certificate's URI/DNS SANs and CN, or the header's plain value. */
  names: string[];
  /** The proxy that forwarded it: only configured peers are believed. */
  via: UnixIdentity | CertificateIdentity;
}

/**
 * A caller that proved nothing: plain loopback TCP (`--insecure`), TLS without a client
 * certificate, or a call through a trusted proxy that forwarded no identity.
 */
export interface AnonymousIdentity {
  kind: "anonymous";
  /** The trusted proxy the call came through, which vouched for nobody. */
  via?: UnixIdentity | CertificateIdentity;
}

export type Identity = UnixIdentity | CertificateIdentity | ForwardedIdentity | AnonymousIdentity;

/** One line naming an identity, for logs and error messages. */
export function describeIdentity(identity: Identity): string {
  switch (identity.kind) {
    case "unix":
      return `unix uid=${identity.uid} gid=${identity.gid} pid=${identity.pid}`;
    case "certificate": {
      const sans = identity.sans.length > 0 ? ` san=${identity.sans.join(",")}` : "";
      return `certificate cn=${JSON.stringify(identity.commonName)}${sans}`;
    }
    case "forwarded":
      return `forwarded ${identity.names.join(",")} via ${describeIdentity(identity.via)}`;
    case "anonymous":
      return identity.via
        ? `anonymous (no forwarded identity) via ${describeIdentity(identity.via)}`
        : "anonymous (no client certificate, no unix credentials)";
  }
}

/** The key limits count by: per person, not per connection (a unix caller is its uid, whatever its pid). */
export function identityKey(identity: Identity): string {
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
