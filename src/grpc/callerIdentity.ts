// What a call's transport proved about its caller: the kernel's credentials of a unix peer, the
// names of a verified client certificate, and the forwarded-identity header as it came. Whom to
// believe is the policy's question (auth/gatekeeper.ts).
import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import type { ForwardedClaim, TransportIdentity } from "../auth/gatekeeper.js";
import { forwardedNames } from "./forwardedNames.js";
import { parseSubjectAltNames } from "./subjectAltNames.js";
import type { UnixPeers } from "./unixListener.js";

/** What of a grpc-js call tells who is calling. */
export interface CallTransport {
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
  metadata: Metadata;
}

/** The identity the transport alone proved. */
export function transportIdentity(call: CallTransport, unixPeers: UnixPeers): TransportIdentity {
  const unix = unixPeers.lookup(call.getPeer());
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

/** The forwarded-identity header of a call, when the policy names one. */
export function forwardedClaim(call: CallTransport, header: string | undefined): ForwardedClaim | undefined {
  if (header === undefined) return undefined;
  const values = call.metadata.get(header);
  return {
    count: values.length,
    names: values.length === 1 ? forwardedNames(header, String(values[0])) : [],
  };
}
