import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import type { Identity } from "../../src/auth/identity.js";
import { PolicyError, parsePolicy } from "../../src/auth/parsePolicy.js";
import {
  allowsCheckpoint,
  allowsRpc,
  defaultPolicy,
  grantFor,
  isTrustedForwarder,
  maxRequestBytes,
  type Policy,
  privilegesBeyondUser,
  processDenial,
} from "../../src/auth/policy.js";
import { RPC_NAMES } from "../../src/grpc/rpcNames.js";
import { packageRoot } from "../../src/packageRoot.js";

const root: Identity = { kind: "unix", uid: 0, gid: 0, pid: 100 };
const alice: Identity = { kind: "unix", uid: 1000, gid: 1000, pid: 200 };
const ciCert: Identity = {
  kind: "certificate",
  commonName: "ci",
  sans: ["spiffe://example/ci", "ci.example"],
};
const anonymous: Identity = { kind: "anonymous" };

function parse(doc: unknown): Policy {
  return parsePolicy(JSON.stringify(doc), "policy.json", RPC_NAMES);
}

function policyError(doc: unknown): string {
  try {
    parsePolicy(typeof doc === "string" ? doc : JSON.stringify(doc), "policy.json", RPC_NAMES);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as Error).message;
  }
  throw new Error("the policy was accepted, but a PolicyError was expected");
}

const TEAM = {
  grants: [
    { name: "root", identities: [{ unix_uid: 0 }], admin: true },
    {
      name: "ci",
      identities: [{ cert_san: "spiffe://example/ci" }, { unix_uid: 1000, unix_gid: 1000 }],
      rpcs: ["Version", "Dump", "Restore", "ListCheckpoints", "GetCheckpoint"],
      processes: { uids: [1000], cgroups: ["/ci.slice"], pids: ["30000-30010", 4242] },
      checkpoints: { read: ["ci-", "shared-"], write: ["ci-"], delete: ["ci-"] },
      option_classes: ["safe"],
      limits: { concurrent_operations: 2, subscribers: 1, max_request_bytes: 65536 },
    },
    { name: "observers", identities: [{ anonymous: true }], rpcs: ["Subscribe", "Version"] },
  ],
  limits: { concurrent_operations: 8, max_request_bytes: 1048576 },
};

describe("the default policy", () => {
  test("root on a unix socket is admin; nobody else gets a grant", () => {
    const p = defaultPolicy();
    expect(grantFor(p, root)?.admin).toBe(true);
    expect(grantFor(p, alice)).toBeUndefined();
    expect(grantFor(p, ciCert)).toBeUndefined();
    expect(grantFor(p, anonymous)).toBeUndefined();
    // A certificate whose CN says "root" is not uid 0.
    expect(grantFor(p, { kind: "certificate", commonName: "0", sans: ["root"] })).toBeUndefined();
  });

  test("admin covers every RPC, checkpoint and process, and the safe and admin option classes only", () => {
    const g = grantFor(defaultPolicy(), root);
    expect(g).toBeDefined();
    if (!g) return;
    for (const rpc of RPC_NAMES) expect(allowsRpc(g, rpc)).toBe(true);
    expect(allowsCheckpoint(g, "anything", "delete")).toBe(true);
    expect(processDenial(g, { pid: 1, uids: [0, 0, 0, 0], cgroup: "/" })).toBeUndefined();
    expect([...g.optionClasses].sort()).toEqual(["admin", "safe"]);
  });
});

describe("matching identities to grants", () => {
  const p = parse(TEAM);

  test("the first grant with a matching selector applies", () => {
    expect(grantFor(p, root)?.name).toBe("root");
    expect(grantFor(p, alice)?.name).toBe("ci");
    expect(grantFor(p, ciCert)?.name).toBe("ci");
    expect(grantFor(p, anonymous)?.name).toBe("observers");
  });

  test("every key of a selector must match", () => {
    expect(grantFor(p, { kind: "unix", uid: 1000, gid: 0, pid: 1 })).toBeUndefined();
    expect(
      grantFor(p, { kind: "certificate", commonName: "ci", sans: ["spiffe://example/other"] }),
    ).toBeUndefined();
  });

  test("forwarded identities match only forwarded_name selectors", () => {
    const fwd: Identity = { kind: "forwarded", names: ["spiffe://example/ci"], via: ciCert };
    expect(grantFor(p, fwd)).toBeUndefined();
    const q = parse({
      grants: [{ name: "f", identities: [{ forwarded_name: "spiffe://example/ci" }], rpcs: ["*"] }],
    });
    expect(grantFor(q, fwd)?.name).toBe("f");
    expect(grantFor(q, ciCert)).toBeUndefined();
  });
});

describe("what a grant allows", () => {
  const p = parse(TEAM);
  const ci = grantFor(p, alice);
  if (!ci) throw new Error("no ci grant");

  test("RPCs: exactly those listed", () => {
    expect(allowsRpc(ci, "Dump")).toBe(true);
    expect(allowsRpc(ci, "DeleteCheckpoint")).toBe(false);
    expect(allowsRpc(ci, "Subscribe")).toBe(false);
    expect(allowsRpc(ci, "dump")).toBe(false);
  });

  test("checkpoints: by id prefix, per access", () => {
    expect(allowsCheckpoint(ci, "ci-nightly", "write")).toBe(true);
    expect(allowsCheckpoint(ci, "shared-base", "read")).toBe(true);
    expect(allowsCheckpoint(ci, "shared-base", "write")).toBe(false);
    expect(allowsCheckpoint(ci, "shared-base", "delete")).toBe(false);
    expect(allowsCheckpoint(ci, "prod-db", "read")).toBe(false);
    expect(allowsCheckpoint(ci, "c", "read")).toBe(false);
  });

  test("processes: by every uid, by cgroup on whole path components, or by pid range", () => {
    expect(
      processDenial(ci, { pid: 5, uids: [1000, 1000, 1000, 1000], cgroup: "/user.slice" }),
    ).toBeUndefined();
    // A setuid process whose saved uid is root is not alice's.
    expect(processDenial(ci, { pid: 5, uids: [1000, 1000, 0, 1000], cgroup: "/user.slice" })).toMatch(
      /pid 5 \(uid 1000\/0, cgroup \/user.slice\) is outside grant "ci"/,
    );
    expect(processDenial(ci, { pid: 5, uids: [0, 0, 0, 0], cgroup: "/ci.slice" })).toBeUndefined();
    expect(
      processDenial(ci, { pid: 5, uids: [0, 0, 0, 0], cgroup: "/ci.slice/job-1.scope" }),
    ).toBeUndefined();
    expect(processDenial(ci, { pid: 5, uids: [0, 0, 0, 0], cgroup: "/ci.slice2" })).toBeDefined();
    expect(processDenial(ci, { pid: 30005, uids: [0, 0, 0, 0], cgroup: "/" })).toBeUndefined();
    expect(processDenial(ci, { pid: 30011, uids: [0, 0, 0, 0], cgroup: "/" })).toBeDefined();
    expect(processDenial(ci, { pid: 4242, uids: [0, 0, 0, 0], cgroup: "" })).toBeUndefined();
    expect(processDenial(ci, { pid: 4243, uids: [], cgroup: "" })).toBeDefined();
  });

  test("a grant by uid covers what that user could trace: not a process that gained privileges", () => {
    const alice = {
      pid: 6,
      uids: [1000, 1000, 1000, 1000],
      cgroup: "/user.slice",
      gids: [1000, 1000, 1000, 1000],
    };
    expect(processDenial(ci, { ...alice, capEff: "0000000000000000", dumpable: true })).toBeUndefined();
    // A setgid program: its effective group is not alice's.
    expect(processDenial(ci, { ...alice, gids: [1000, 42, 42, 42] })).toMatch(
      /pid 6 runs as uid 1000 but its gids differ \(1000\/42\/42\/42\).*grant by uid does not cover/,
    );
    // File or ambient capabilities.
    expect(processDenial(ci, { ...alice, capEff: "0000000000002000" })).toMatch(/holds capabilities/);
    // Non-dumpable: a setuid program that dropped back, or an agent guarding its keys.
    expect(processDenial(ci, { ...alice, dumpable: false })).toMatch(/made itself non-dumpable/);
    // Root's processes are root's whatever they hold; cgroup and pid grants cover what is in them.
    expect(privilegesBeyondUser({ pid: 7, uids: [0, 0, 0, 0], cgroup: "/", capEff: "1ff" })).toBeUndefined();
    expect(processDenial(ci, { ...alice, cgroup: "/ci.slice", dumpable: false })).toBeUndefined();
  });

  test("a grant without processes, checkpoints or option classes gets none, but safe options", () => {
    const obs = grantFor(p, anonymous);
    if (!obs) throw new Error("no observers grant");
    expect(processDenial(obs, { pid: 4242, uids: [1000], cgroup: "/" })).toBeDefined();
    expect(allowsCheckpoint(obs, "ci-x", "read")).toBe(false);
    expect([...obs.optionClasses]).toEqual(["safe"]);
  });

  test("limits are kept per grant and in total", () => {
    expect(ci.limits).toEqual({ concurrentOperations: 2, subscribers: 1, maxRequestBytes: 65536 });
    expect(p.limits).toEqual({ concurrentOperations: 8, maxRequestBytes: 1048576 });
  });

  test("a request size limit is the grant's or the policy's, whichever is smaller", () => {
    expect(maxRequestBytes(p, ci)).toBe(65536);
    const obs = grantFor(p, anonymous);
    expect(obs && maxRequestBytes(p, obs)).toBe(1048576);
    expect(maxRequestBytes(defaultPolicy(), defaultPolicy().grants[0]!)).toBeUndefined();
  });
});

describe("forwarded identities", () => {
  test("are believed only from the trusted peers named", () => {
    const p = parse({
      grants: [{ name: "root", identities: [{ unix_uid: 0 }], admin: true }],
      forwarded_identity: { trusted_peers: [{ cert_san: "spiffe://mesh/sidecar" }, { unix_uid: 1337 }] },
    });
    expect(p.forwarded?.header).toBe("x-forwarded-client-cert");
    expect(
      isTrustedForwarder(p, { kind: "certificate", commonName: "", sans: ["spiffe://mesh/sidecar"] }),
    ).toBe(true);
    expect(isTrustedForwarder(p, { kind: "unix", uid: 1337, gid: 0, pid: 1 })).toBe(true);
    expect(isTrustedForwarder(p, ciCert)).toBe(false);
    expect(isTrustedForwarder(p, anonymous)).toBe(false);
    expect(isTrustedForwarder(defaultPolicy(), root)).toBe(false);
  });
});

describe("mistakes are refused with their place named", () => {
  test.each<[unknown, RegExp]>([
    ["{", /^policy.json: not valid JSON/],
    [[], /^policy.json: the document: must be an object/],
    [{}, /^policy.json: grants: must be a list/],
    [{ grants: [] }, /^policy.json: grants: at least one grant is needed/],
    [{ grants: [], extra: 1 }, /^policy.json: the document: unknown key "extra"/],
    [{ grants: [{ identities: [{ unix_uid: 0 }] }] }, /grants\[0\]\.name: must be a string/],
    [{ grants: [{ name: "a", identities: [] }] }, /grants\[0\]\.identities: at least one selector/],
    [{ grants: [{ name: "a", identities: [{}] }] }, /grants\[0\]\.identities\[0\]: an empty selector/],
    [
      { grants: [{ name: "a", identities: [{ uid: 0 }] }] },
      /grants\[0\]\.identities\[0\]: unknown key "uid"/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0, cert_cn: "x" }] }] },
      /grants\[0\]\.identities\[0\]: unix_uid and cert_cn describe different kinds of caller/,
    ],
    [{ grants: [{ name: "a", identities: [{ unix_uid: -1 }] }] }, /unix_uid: must be a uid\/gid/],
    [{ grants: [{ name: "a", identities: [{ unix_uid: "0" }] }] }, /unix_uid: must be a uid\/gid/],
    [{ grants: [{ name: "a", identities: [{ anonymous: false }] }] }, /anonymous: only true is meaningful/],
    [
      {
        grants: [
          { name: "a", identities: [{ unix_uid: 0 }], admin: true },
          { name: "a", identities: [{ unix_uid: 1 }], admin: true },
        ],
      },
      /grants\[1\]\.name: "a" is used twice/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], admin: true, rpcs: ["Dump"] }] },
      /grants\[0\]\.rpcs: an admin grant may do everything/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], rpcs: ["Dumps"] }] },
      /rpcs\[0\]: "Dumps" is not an RPC; known: Version/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], option_classes: ["never"] }] },
      /option_classes\[0\]: "never" options .* are refused for everyone/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], option_classes: ["root"] }] },
      /option_classes\[0\]: "root" is not an option class/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], checkpoints: { read: ["../"] } }] },
      /checkpoints\.read\[0\]: "\.\.\/" is neither "\*" nor a checkpoint id prefix/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], checkpoints: { list: ["x"] } }] },
      /checkpoints: unknown key "list"/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: {} }] },
      /processes: grants no process/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: { cgroups: ["ci.slice"] } }] },
      /processes\.cgroups\[0\]: "ci.slice" must be an absolute cgroup v2 path/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: { cgroups: ["/a/../b"] } }] },
      /processes\.cgroups\[0\]/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: { pids: ["10-5"] } }] },
      /processes\.pids\[0\]: "10-5" ends before it starts/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: { pids: [0] } }] },
      /processes\.pids\[0\]: pids run from 1/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], processes: { pids: ["1..5"] } }] },
      /processes\.pids\[0\]: must be a pid \(4242\) or an inclusive range/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], limits: { concurrent_operations: -1 } }] },
      /limits\.concurrent_operations: must be a whole number/,
    ],
    [
      { grants: [{ name: "a", identities: [{ unix_uid: 0 }], limits: { max_request_bytes: 100 } }] },
      /limits\.max_request_bytes: 100 is too small for any request; give at least 1024/,
    ],
    [
      {
        grants: [{ name: "a", identities: [{ unix_uid: 0 }], admin: true }],
        forwarded_identity: { trusted_peers: [] },
      },
      /forwarded_identity\.trusted_peers: name at least one trusted proxy/,
    ],
    [
      {
        grants: [{ name: "a", identities: [{ unix_uid: 0 }], admin: true }],
        forwarded_identity: { trusted_peers: [{ anonymous: true }] },
      },
      /forwarded_identity\.trusted_peers: a trusted proxy must be identified/,
    ],
    [
      {
        grants: [{ name: "a", identities: [{ unix_uid: 0 }], admin: true }],
        forwarded_identity: { header: "grpc-status", trusted_peers: [{ unix_uid: 1 }] },
      },
      /forwarded_identity\.header: "grpc-status" is not a usable header name/,
    ],
  ])("%j", (doc, message) => {
    expect(policyError(doc)).toMatch(message);
  });
});

describe("the example policy in docs/", () => {
  test("parses, and means what its names say", () => {
    const file = join(packageRoot, "docs", "policy.example.json");
    const p = parsePolicy(readFileSync(file, "utf8"), file, RPC_NAMES);
    expect(p.grants.map((g) => g.name)).toEqual(["root", "ci", "dashboard"]);
    const ci = grantFor(p, { kind: "unix", uid: 1001, gid: 1001, pid: 1 });
    expect(ci?.name).toBe("ci");
    expect(ci && allowsCheckpoint(ci, "ci-build-7", "delete")).toBe(true);
    expect(p.forwarded?.header).toBe("x-forwarded-client-cert");
    expect(p.limits).toEqual({ concurrentOperations: 16, subscribers: 200, maxRequestBytes: 1048576 });
  });
});
