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

/**
 * The names in a forwarded-identity header. Envoy's `x-forwarded-client-cert` carries elements
 * like `By=…;Hash=…;Subject="CN=alice,O=x";URI=spiffe://a/b;DNS=alice.example`, several of them
 * comma-separated when more than one proxy appended; the last element describes the client of the
 * proxy that talks to us. Any other header's value is taken as one name.
 */
export function forwardedNames(header: string, value: string): string[] {
  if (header.toLowerCase() !== "x-forwarded-client-cert") {
    const name = value.trim();
    return name ? [name] : [];
  }
  const elements = splitOutsideQuotes(value, ",");
  const last = elements[elements.length - 1] ?? "";
  const names: string[] = [];
  for (const pair of splitOutsideQuotes(last, ";")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const raw = pair.slice(eq + 1).trim();
    const val = raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\"/g, '"') : raw;
    if (key === "uri" || key === "dns") names.push(val);
    if (key === "subject") {
      const cn = /(?:^|,)\s*CN=((?:\\,|[^,])*)/.exec(val);
      if (cn?.[1]) names.push(cn[1].replace(/\\,/g, ","));
    }
  }
  return names.filter((n) => n.length > 0);
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && quoted && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === separator && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}
