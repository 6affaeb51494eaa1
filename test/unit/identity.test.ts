import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { describeIdentity } from "../../src/auth/identity.js";
import { forwardedNames } from "../../src/grpc/forwardedNames.js";
import { parseSubjectAltNames } from "../../src/grpc/subjectAltNames.js";
import { issue, makeCa } from "../support/certs.js";

describe("forwarded identity headers", () => {
  test("x-forwarded-client-cert: URI and DNS SANs and the subject's CN of the last element", () => {
    const value =
      'By=spiffe://mesh/gateway;Hash=abc123;Subject="CN=alice,O=Example\\, Inc";URI=spiffe://example/alice;DNS=alice.example';
    expect(forwardedNames("x-forwarded-client-cert", value)).toEqual([
      "alice",
      "spiffe://example/alice",
      "alice.example",
    ]);
  });

  test("several elements: only the last, the client of the proxy that talks to us, counts", () => {
    const value = "URI=spiffe://example/first;DNS=first.example,URI=spiffe://example/second";
    expect(forwardedNames("X-Forwarded-Client-Cert", value)).toEqual(["spiffe://example/second"]);
  });

  test("commas and semicolons inside quotes do not split", () => {
    const value = 'Subject="CN=x\\,y;z,O=o";URI=spiffe://example/q';
    expect(forwardedNames("x-forwarded-client-cert", value)).toEqual(["x,y;z", "spiffe://example/q"]);
  });

  test("an element with no name gives nothing; By and Hash are never names", () => {
    expect(forwardedNames("x-forwarded-client-cert", "By=spiffe://mesh/gw;Hash=abc")).toEqual([]);
    expect(forwardedNames("x-forwarded-client-cert", "")).toEqual([]);
  });

  test("any other header's value is one name", () => {
    expect(forwardedNames("x-remote-user", "  alice  ")).toEqual(["alice"]);
    expect(forwardedNames("x-remote-user", "   ")).toEqual([]);
  });
});

describe("certificate names", () => {
  test("subjectaltname as Node gives it, to bare values", () => {
    expect(
      parseSubjectAltNames(
        "DNS:gw.example, URI:spiffe://example/ci, IP Address:127.0.0.1, email:ops@example",
      ),
    ).toEqual(["gw.example", "spiffe://example/ci", "127.0.0.1", "ops@example"]);
    expect(parseSubjectAltNames("")).toEqual([]);
  });

  test("a comma inside a quoted value does not split it: one URI SAN never passes for a second name", () => {
    // Node writes such a value as a JSON string; current versions escape the comma too.
    expect(parseSubjectAltNames('URI:"spiffe://x/a, DNS:admin", DNS:ok.example')).toEqual([
      "spiffe://x/a, DNS:admin",
      "ok.example",
    ]);
    expect(parseSubjectAltNames('URI:"spiffe://x/a\\u002c DNS:admin"')).toEqual(["spiffe://x/a, DNS:admin"]);
    expect(parseSubjectAltNames('email:"o\\"brien\\\\x@example", DNS:b')).toEqual([
      'o"brien\\x@example',
      "b",
    ]);
  });

  test("a real certificate whose URI SAN holds ', DNS:admin' has that one URI and no 'admin'", () => {
    const dir = mkdtempSync(join(tmpdir(), "criu-gw-san-"));
    try {
      const ca = makeCa(dir, "ca");
      const cert = issue(dir, ca, "tricky", "tricky", ["URI:spiffe://x/a, DNS:admin", "DNS:ok.example"]);
      const text = new X509Certificate(readFileSync(cert.cert)).subjectAltName ?? "";
      expect(text).toContain("DNS:admin");
      const names = parseSubjectAltNames(text);
      expect(names).toEqual(["spiffe://x/a, DNS:admin", "ok.example"]);
      expect(names).not.toContain("admin");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("text that is not Node's format gives no names rather than a guess", () => {
    for (const text of ['URI:"unterminated', 'URI:"a"b', 'URI:"bad \\x escape"', "no type here", 'x"y:z']) {
      expect(parseSubjectAltNames(text)).toEqual([]);
    }
  });
});

describe("identities in logs", () => {
  test("each kind names what proved it", () => {
    expect(describeIdentity({ kind: "unix", uid: 1000, gid: 100, pid: 42 })).toBe(
      "unix uid=1000 gid=100 pid=42",
    );
    expect(describeIdentity({ kind: "certificate", commonName: "ci", sans: ["spiffe://e/ci"] })).toBe(
      'certificate cn="ci" san=spiffe://e/ci',
    );
    expect(
      describeIdentity({
        kind: "forwarded",
        names: ["spiffe://e/alice"],
        via: { kind: "certificate", commonName: "sidecar", sans: [] },
      }),
    ).toBe('forwarded spiffe://e/alice via certificate cn="sidecar"');
    expect(describeIdentity({ kind: "anonymous" })).toMatch(/^anonymous/);
    expect(
      describeIdentity({ kind: "anonymous", via: { kind: "certificate", commonName: "sidecar", sans: [] } }),
    ).toBe('anonymous (no forwarded identity) via certificate cn="sidecar"');
  });
});
