// Security claims 3–6, 17, 18 (docs/security.md): who is calling, what a policy grants them, and
// the audit line every call leaves. Real mutual TLS with certificates made here, real unix-socket
// peer credentials (a client running as uid 65534), real CRIU dumping and restoring real processes.
import { execFile, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  type Checkpoint,
  CheckpointKind,
  CriuOptions,
  CriuServiceClient,
  type DumpResponse,
  type Event,
  type ListCheckpointsResponse,
  type RestoreResponse,
  type StartPageServerResponse,
  type VersionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { packageRoot } from "../../src/packageRoot.js";
import { type CertFiles, issue, makeCa, pem } from "../support/certs.js";
import {
  call,
  criuChildren,
  dumpWith,
  failure,
  plantCheckpoint,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { runSession } from "../support/session.js";
import { type Counter, isAlive, killAndWaitGone, startCounter, waitFor } from "../support/workload.js";

const NOBODY = 65534;
const CLI = join(packageRoot, "bin", "criu-gateway.js");

let gw: TestGateway;
let certDir: string;
let ca: CertFiles;
let tlsPort: number;
let policyFile: string;
const counters: Counter[] = [];
const restored: number[] = [];
const clients: CriuServiceClient[] = [];
/** Every event, as root sees them. */
const rootEvents: Event[] = [];

const POLICY = {
  grants: [
    { name: "root", identities: [{ unix_uid: 0 }], admin: true },
    {
      name: "ci",
      identities: [{ cert_san: "spiffe://example/ci" }],
      rpcs: [
        "Version",
        "Dump",
        "PreDump",
        "Restore",
        "Session",
        "ListCheckpoints",
        "GetCheckpoint",
        "DeleteCheckpoint",
        "Subscribe",
        "ImportImages",
        "StartPageServer",
        "StopPageServer",
      ],
      // ci's workloads run as root here: this machine's CRIU lacks CAP_SYS_RESOURCE and cannot
      // dump another user's process at all, so only root's can be dumped for real.
      processes: { uids: [0] },
      checkpoints: { read: ["ci-", "shared-"], write: ["ci-"], delete: ["ci-"] },
      limits: { concurrent_operations: 1, subscribers: 1 },
    },
    {
      name: "nobody-local",
      identities: [{ unix_uid: NOBODY }],
      rpcs: ["Version", "Dump"],
      processes: { uids: [NOBODY] },
      checkpoints: { write: ["nobody-"] },
    },
    {
      name: "via-mesh",
      identities: [{ forwarded_name: "spiffe://example/viewer" }],
      rpcs: ["ListCheckpoints"],
      checkpoints: { read: ["shared-"] },
    },
  ],
  forwarded_identity: { trusted_peers: [{ cert_san: "spiffe://mesh/sidecar" }] },
};

function writePolicy(doc: unknown): void {
  writeFileSync(policyFile, JSON.stringify(doc, null, 2));
}

/** Reloads the policy with ci's processes replaced by `processes`. */
async function narrowCi(processes: Record<string, unknown>): Promise<void> {
  const narrowed: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
  narrowed.grants[1] = { ...narrowed.grants[1], processes };
  writePolicy(narrowed);
  expect((await gw.gateway.reload()).policy).toBe("reloaded");
}

async function restorePolicy(): Promise<void> {
  writePolicy(POLICY);
  expect((await gw.gateway.reload()).policy).toBe("reloaded");
}

/** A client over mutual TLS presenting `name`'s certificate (undefined: none). */
function tlsClient(name: string | undefined, caFiles: CertFiles = ca): CriuServiceClient {
  const client = name
    ? pem({ cert: join(certDir, `${name}.pem`), key: join(certDir, `${name}.key`) })
    : undefined;
  const c = new CriuServiceClient(
    `localhost:${tlsPort}`,
    credentials.createSsl(pem(caFiles).cert, client?.key ?? null, client?.cert ?? null),
  );
  clients.push(c);
  return c;
}

/** The CLI, run as another user: its connection carries that user's credentials. */
function cliAs(uid: number, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, "--addr", gw.address], {
      uid,
      gid: uid,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function version(client: CriuServiceClient, metadata = new Metadata()): Promise<VersionResponse> {
  return call<VersionResponse>((cb) => client.version({}, metadata, cb));
}

function dump(
  client: CriuServiceClient,
  checkpointId: string,
  pid: number,
  more: Partial<CriuOptions> = {},
): Promise<DumpResponse> {
  return dumpWith(client, checkpointId, { pid, leaveRunning: true, ...more });
}

function list(client: CriuServiceClient, metadata = new Metadata()): Promise<Checkpoint[]> {
  return call<ListCheckpointsResponse>((cb) => client.listCheckpoints({}, metadata, cb)).then((r) =>
    r.checkpoints.map((c) => c),
  );
}

async function rootCounter(name: string): Promise<Counter> {
  const c = await startCounter(gw.dir, name);
  counters.push(c);
  return c;
}

function denied(err: ServiceError, message: RegExp): void {
  expect(status[err.code]).toBe("PERMISSION_DENIED");
  expect(err.details).toMatch(message);
}

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    certDir = join(dir, "certs");
    mkdirSync(certDir);
    ca = makeCa(certDir, "ca");
    issue(certDir, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
    issue(certDir, ca, "ci", "ci", ["URI:spiffe://example/ci"]);
    issue(certDir, ca, "stranger", "stranger", ["URI:spiffe://example/stranger"]);
    issue(certDir, ca, "sidecar", "sidecar", ["URI:spiffe://mesh/sidecar"]);
    // One URI SAN whose value reads like a second name.
    issue(certDir, ca, "tricky", "tricky", ["URI:spiffe://example/tricky, DNS:admin.example"]);
    const rogue = makeCa(certDir, "rogue-ca");
    // Same names as ci, signed by a CA the gateway does not trust.
    issue(certDir, rogue, "mallory", "ci", ["URI:spiffe://example/ci"]);
    policyFile = join(dir, "policy.json");
    writeFileSync(policyFile, JSON.stringify(POLICY));
    return {
      listen: [`unix:${join(dir, "gw.sock")}`, "127.0.0.1:0"],
      tls: {
        certFile: join(certDir, "server.pem"),
        keyFile: join(certDir, "server.key"),
        clientCaFile: ca.cert,
      },
      tlsReloadIntervalMs: 0,
      policyFile,
      unixSocketMode: 0o666,
    };
  });
  // Other users must reach the socket and the workload directory.
  chmodSync(gw.dir, 0o755);
  mkdirSync(join(gw.dir, "nobody"), { mode: 0o777 });
  chmodSync(join(gw.dir, "nobody"), 0o777);
  tlsPort = Number(gw.gateway.addresses[1]?.split(":").pop());
  const sub = gw.client.subscribe({ kinds: [], pid: 0, checkpointId: "" });
  sub.on("data", (r: { event?: Event }) => {
    if (r.event) rootEvents.push(r.event);
  });
  sub.on("error", () => {});
}, 60_000);

afterEach(async () => {
  for (const pid of restored.splice(0)) await killAndWaitGone(pid);
  for (const c of counters.splice(0)) {
    c.child.kill("SIGKILL");
    await c.exited;
  }
  expect(criuChildren()).toEqual([]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await gw?.close();
});

describe("who is calling (claims 3, 4, 5)", () => {
  test("mutual TLS: the client certificate names the caller, and the policy's grant applies", async () => {
    const v = await version(tlsClient("ci"));
    expect(v.gatewayVersion).toMatch(/^\d+\.\d+\.\d+/);
    const line = gw.audit.findLast((r) => r.rpc === "Version");
    expect(line).toMatchObject({
      identity: 'certificate cn="ci" san=spiffe://example/ci',
      grant: "ci",
      result: "OK",
    });
  });

  test("a client in another language (Debian's python3-grpcio) gets the same answers over mTLS", async () => {
    const script = [
      "import json, sys, grpc",
      "ca, port = open(sys.argv[1], 'rb').read(), sys.argv[2]",
      "out = {}",
      "for name in sys.argv[3:]:",
      "    key = open(sys.argv[1].replace('ca.pem', name + '.key'), 'rb').read()",
      "    cert = open(sys.argv[1].replace('ca.pem', name + '.pem'), 'rb').read()",
      "    creds = grpc.ssl_channel_credentials(ca, key, cert)",
      "    with grpc.secure_channel('localhost:' + port, creds) as ch:",
      "        version = ch.unary_unary('/criu.gateway.v1.CriuService/Version')",
      "        try:",
      "            version(b'', timeout=20)",
      "            out[name] = 'OK'",
      "        except grpc.RpcError as e:",
      "            out[name] = e.code().name + ': ' + e.details()",
      "print(json.dumps(out))",
    ].join("\n");
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        "/usr/bin/python3",
        ["-c", script, ca.cert, String(tlsPort), "ci", "stranger"],
        (err, out, errOut) =>
          err ? reject(new Error(`python3 failed (python3-grpcio installed?): ${errOut}`)) : resolve(out),
      );
    });
    const answers = JSON.parse(stdout) as Record<string, string>;
    expect(answers.ci).toBe("OK");
    expect(answers.stranger).toMatch(
      /^PERMISSION_DENIED: no grant of the gateway's policy matches certificate cn="stranger"/,
    );
  });

  test("a certificate signed by another CA, or no certificate at all, never gets a call through", async () => {
    const before = gw.audit.length;
    const rogue = await failure(version(tlsClient("mallory")));
    expect(status[rogue.code]).toBe("UNAVAILABLE");
    const none = await failure(version(tlsClient(undefined)));
    expect(status[none.code]).toBe("UNAVAILABLE");
    // Refused in the handshake: no call reached the gateway's code.
    expect(gw.audit.length).toBe(before);
  });

  test("a certificate the CA signed but no grant names is PERMISSION_DENIED, and says who it was", async () => {
    const err = await failure(version(tlsClient("stranger")));
    denied(
      err,
      /no grant of the gateway's policy matches certificate cn="stranger" san=spiffe:\/\/example\/stranger/,
    );
    expect(gw.audit.at(-1)).toMatchObject({ rpc: "Version", grant: undefined, result: "PERMISSION_DENIED" });
  });

  test("a URI SAN holding ', DNS:<name>' is one URI: it never matches a grant for that DNS name", async () => {
    const withDnsGrant: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
    withDnsGrant.grants.splice(1, 0, {
      name: "admin-host",
      identities: [{ cert_san: "admin.example" }],
      admin: true,
    });
    writePolicy(withDnsGrant);
    expect((await gw.gateway.reload()).policy).toBe("reloaded");
    try {
      denied(
        await failure(version(tlsClient("tricky"))),
        /no grant of the gateway's policy matches certificate cn="tricky" san=spiffe:\/\/example\/tricky, DNS:admin\.example$/,
      );
    } finally {
      await restorePolicy();
    }
  });

  test("unix socket: the kernel's peer credentials are the identity (uid 65534 gets only Version)", async () => {
    const ok = await cliAs(NOBODY, ["version"]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(gw.audit.at(-1)).toMatchObject({ rpc: "Version", grant: "nobody-local", result: "OK" });
    expect(gw.audit.at(-1)?.identity).toMatch(/^unix uid=65534 gid=65534 pid=\d+$/);
    const ls = await cliAs(NOBODY, ["ls"]);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toMatch(/PERMISSION_DENIED: grant "nobody-local" does not allow ListCheckpoints/);
    // Root on the same socket is admin.
    await list(gw.client);
    expect(gw.audit.at(-1)).toMatchObject({
      rpc: "ListCheckpoints",
      grant: "root",
      identity: expect.stringMatching(/^unix uid=0 /),
    });
  });

  test("a forwarded identity is believed from the trusted sidecar only", async () => {
    await dump(gw.client, "shared-view", (await rootCounter("shared")).pid);
    const header = new Metadata();
    header.set(
      "x-forwarded-client-cert",
      'By=spiffe://mesh/sidecar;URI=spiffe://example/viewer;Subject="CN=viewer"',
    );
    const seen = await list(tlsClient("sidecar"), header);
    expect(seen.map((c) => c.checkpointId)).toEqual(["shared-view"]);
    expect(gw.audit.at(-1)).toMatchObject({
      grant: "via-mesh",
      identity:
        'forwarded spiffe://example/viewer,viewer via certificate cn="sidecar" san=spiffe://mesh/sidecar',
    });
    // The same header from a caller that is not a trusted proxy is refused, not ignored.
    denied(await failure(list(tlsClient("ci"), header)), /believed only from the proxies the policy trusts/);
    expect(gw.audit.at(-1)).toMatchObject({
      rpc: "ListCheckpoints",
      identity: 'certificate cn="ci" san=spiffe://example/ci',
      grant: "ci",
      result: "PERMISSION_DENIED",
    });
  });

  test("a trusted proxy's call without the header is anonymous: the proxy vouches for nobody, itself included", async () => {
    // Even a grant naming the sidecar's own certificate does not apply to what it forwards
    // without a header (say, from a client that reached it with no certificate).
    const withSidecarGrant: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
    withSidecarGrant.grants.push({
      name: "sidecar-itself",
      identities: [{ cert_san: "spiffe://mesh/sidecar" }],
      rpcs: ["ListCheckpoints"],
      checkpoints: { read: ["*"] },
    });
    writePolicy(withSidecarGrant);
    expect((await gw.gateway.reload()).policy).toBe("reloaded");
    try {
      denied(
        await failure(list(tlsClient("sidecar"))),
        /no grant of the gateway's policy matches anonymous \(no forwarded identity\) via certificate cn="sidecar"/,
      );
      expect(gw.audit.at(-1)).toMatchObject({
        rpc: "ListCheckpoints",
        identity: 'anonymous (no forwarded identity) via certificate cn="sidecar" san=spiffe://mesh/sidecar',
        grant: undefined,
        result: "PERMISSION_DENIED",
      });
      // A caller that is no trusted proxy is still itself.
      await version(tlsClient("ci"));
      expect(gw.audit.at(-1)).toMatchObject({ rpc: "Version", grant: "ci", result: "OK" });
    } finally {
      await restorePolicy();
    }
  });
});

describe("hostile identity headers", () => {
  test("malformed forwarded headers from the trusted proxy get a clear status, never INTERNAL", async () => {
    const pieces = [
      '"',
      ";",
      ",",
      "=",
      "\\",
      "URI=",
      "DNS=",
      'Subject="',
      "CN=",
      "By=",
      "Hash=",
      " ",
      "\t",
      "é",
      "\u0000",
    ];
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const sidecar = tlsClient("sidecar");
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      let value = "";
      const n = next() % 24;
      for (let j = 0; j < n; j++) value += pieces[next() % pieces.length];
      if (i % 50 === 0) value = "URI=".repeat(2000); // long, but under the header limit
      const header = new Metadata();
      try {
        header.set("x-forwarded-client-cert", value);
      } catch {
        continue; // not a value HTTP/2 can carry at all
      }
      const code = await list(sidecar, header).then(
        () => "OK",
        (err: ServiceError) => status[err.code] ?? String(err.code),
      );
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    for (const code of seen.keys()) expect(["UNAUTHENTICATED", "PERMISSION_DENIED"]).toContain(code);
    expect(seen.get("UNAUTHENTICATED")).toBeGreaterThan(0);
    // Still serving, and still judging correctly.
    const good = new Metadata();
    good.set("x-forwarded-client-cert", "URI=spiffe://example/viewer");
    await list(sidecar, good);
  });
});

describe("what a caller may do (claim 6)", () => {
  test("a non-admin dump of another user's process is refused before CRIU runs", async () => {
    // uid 65534, on the unix socket, may dump its own processes; root's counter is not one of them.
    const victim = await rootCounter("victim");
    const viaCli = await cliAs(NOBODY, ["dump", "--pid", String(victim.pid), "--id", "nobody-victim"]);
    expect(viaCli.code).toBe(1);
    expect(viaCli.stderr).toMatch(
      new RegExp(
        `PERMISSION_DENIED: pid ${victim.pid} \\(uid 0, cgroup .*\\) is outside grant "nobody-local"; a dump covers the whole tree under pid ${victim.pid}`,
      ),
    );
    // And ci, over mTLS, may touch root's processes only: uid 65534's are not its to dump.
    const other = spawn("/usr/bin/python3", ["-c", "import time\nwhile True: time.sleep(1)"], {
      uid: NOBODY,
      gid: NOBODY,
      stdio: "ignore",
    });
    try {
      const otherPid = other.pid ?? 0;
      denied(
        await failure(dump(tlsClient("ci"), "ci-other", otherPid)),
        new RegExp(`pid ${otherPid} \\(uid 65534, cgroup .*\\) is outside grant "ci"`),
      );
      // No operation started: CRIU never saw either pid, and nothing was written.
      expect(rootEvents.some((e) => e.started?.pid === victim.pid || e.started?.pid === otherPid)).toBe(
        false,
      );
      expect(existsSync(join(gw.imagesRoot, "nobody-victim"))).toBe(false);
      expect(existsSync(join(gw.imagesRoot, "ci-other"))).toBe(false);
      const before = victim.read();
      await waitFor(() => victim.read() > before, "the victim to keep counting");
      expect(isAlive(otherPid)).toBe(true);
      const line = gw.audit.find((r) => r.checkpoint === "ci-other");
      expect(line).toMatchObject({
        rpc: "Dump",
        identity: 'certificate cn="ci" san=spiffe://example/ci',
        grant: "ci",
        pid: otherPid,
        optionClasses: ["safe"],
        result: "PERMISSION_DENIED",
      });
      expect(line?.durationMs).toBeGreaterThanOrEqual(0);
      expect(gw.audit.find((r) => r.checkpoint === "nobody-victim")?.identity).toMatch(/^unix uid=65534 /);
    } finally {
      other.kill("SIGKILL");
      await new Promise((resolve) => other.once("exit", resolve));
    }
  });

  test("a grant by uid does not cover that user's processes that gained privileges", async () => {
    // Processes of uid 65534 that the kernel would not let uid 65534 trace: a group it was not
    // given (as a setgid program has), an ambient capability, a non-dumpable mark.
    const loop = ["/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(1)"];
    const nonDumpable = [
      "/usr/bin/python3",
      "-c",
      "import ctypes, time\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\nwhile True: time.sleep(1)",
    ];
    const as = ["/usr/bin/setpriv", "--reuid=65534", "--rgid=65534", "--clear-groups"];
    const cases: [string, string[], RegExp][] = [
      ["setgid", [...as, "--egid=0", "--", ...loop], /its gids differ \(65534\/0\/0\/0\)/],
      [
        "capable",
        [...as, "--egid=65534", "--inh-caps=+net_raw", "--ambient-caps=+net_raw", "--", ...loop],
        /holds capabilities \(CapEff 0000000000002000\)/,
      ],
      ["secretive", [...as, "--egid=65534", "--", ...nonDumpable], /made itself non-dumpable/],
    ];
    const children = cases.map(([, argv]) =>
      spawn(argv[0] as string, argv.slice(1), { stdio: "ignore", cwd: "/" }),
    );
    try {
      for (const [i, [name, , reason]] of cases.entries()) {
        const pid = children[i]?.pid ?? 0;
        await waitFor(
          () => (name !== "secretive" || statSync(`/proc/${pid}/status`).uid === 0) && isAlive(pid),
          `the ${name} process to be ready`,
        );
        const res = await cliAs(NOBODY, ["dump", "--pid", String(pid), "--id", `nobody-${name}`]);
        expect(res.code, res.stderr).toBe(1);
        expect(res.stderr).toContain(`PERMISSION_DENIED: pid ${pid} runs as uid 65534 but`);
        expect(res.stderr).toMatch(reason);
        expect(res.stderr).toContain('which a grant by uid does not cover (grant "nobody-local")');
        expect(isAlive(pid)).toBe(true);
      }
      // Refused before CRIU: no operation started on any of them.
      const pids = children.map((c) => c.pid);
      expect(rootEvents.some((e) => pids.includes(e.started?.pid))).toBe(false);
      // The same user's plain process passes the grant and reaches CRIU (which, on this host,
      // cannot dump another user's process: it lacks CAP_SYS_RESOURCE).
      const plain = spawn("/usr/bin/setpriv", [...as, "--egid=65534", "--", ...loop], {
        stdio: "ignore",
        cwd: "/",
      });
      children.push(plain);
      await waitFor(() => isAlive(plain.pid ?? 0), "the plain process to start");
      const res = await cliAs(NOBODY, ["dump", "--pid", String(plain.pid), "--id", "nobody-plain"]);
      expect(res.stderr).not.toContain("PERMISSION_DENIED");
      await waitFor(
        () => rootEvents.some((e) => e.started?.pid === plain.pid),
        "the plain process's dump to have started",
      );
    } finally {
      for (const c of children) c.kill("SIGKILL");
      await Promise.all(
        children.map((c) =>
          c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined,
        ),
      );
    }
  });

  test("within its grant, ci dumps a process and restores it, and it counts on", async () => {
    const own = await rootCounter("own");
    const client = tlsClient("ci");
    const result = await call<DumpResponse>((cb) =>
      client.dump(
        {
          checkpointId: "ci-own",
          parentCheckpointId: "",
          options: CriuOptions.fromPartial({ pid: own.pid }),
        },
        cb,
      ),
    );
    expect(result.checkpoint?.checkpointId).toBe("ci-own");
    await own.exited;
    const at = own.read();
    const back = await call<RestoreResponse>((cb) =>
      client.restore({ checkpointId: "ci-own", options: undefined }, cb),
    );
    restored.push(back.pid);
    expect(back.pid).toBe(own.pid);
    await waitFor(() => own.read() > at + 3, "the restored counter to count on");
    // What the checkpoint recorded of its processes, for later restores to be judged by.
    const info = await call<{ checkpoint?: Checkpoint }>((cb) =>
      client.getCheckpoint({ checkpointId: "ci-own" }, cb),
    );
    expect(info.checkpoint?.rootPid).toBe(own.pid);
  });

  test("the whole tree is checked, not only its root", async () => {
    // A parent of uid 65534 with a child; the grant names the parent's pid alone.
    const childFile = join(gw.dir, "nobody", "child.pid");
    const parent = spawn(
      "/usr/bin/python3",
      [
        "-c",
        "import subprocess, sys, time\n" +
          "c = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])\n" +
          "open(sys.argv[1] + '.tmp', 'w').write(str(c.pid))\n" +
          "import os; os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n" +
          "while True: time.sleep(1)",
        childFile,
      ],
      { uid: NOBODY, gid: NOBODY, stdio: "ignore", detached: true },
    );
    const parentPid = parent.pid ?? 0;
    try {
      await waitFor(() => existsSync(childFile), "the tree to start");
      const childPid = Number(readFileSync(childFile, "utf8"));
      await narrowCi({ pids: [parentPid] });
      const err = await failure(dump(tlsClient("ci"), "ci-tree", parentPid));
      denied(
        err,
        new RegExp(
          `pid ${childPid} \\(uid 65534.*is outside grant "ci"; a dump covers the whole tree under pid ${parentPid}`,
        ),
      );
      expect(isAlive(parentPid) && isAlive(childPid)).toBe(true);
    } finally {
      process.kill(-parentPid, "SIGKILL");
      await new Promise((resolve) => parent.once("exit", resolve));
      await restorePolicy();
    }
  });

  test("a process that joins the tree after the check is caught on the frozen tree, and the dump rolls back", async () => {
    const childFile = join(gw.dir, "grown.pid");
    const readyFile = join(gw.dir, "grown.ready");
    const parent = spawn(
      "/usr/bin/python3",
      [
        "-c",
        [
          "import os, signal, subprocess, sys, time",
          "kids = []",
          "def grow(*_):",
          "    c = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])",
          "    kids.append(c)",
          "    open(sys.argv[1] + '.tmp', 'w').write(str(c.pid))",
          "    os.replace(sys.argv[1] + '.tmp', sys.argv[1])",
          "signal.signal(signal.SIGUSR1, grow)",
          "open(sys.argv[2], 'w').write('ready')",
          "while True: time.sleep(1)",
        ].join("\n"),
        childFile,
        readyFile,
      ],
      { stdio: "ignore", detached: true },
    );
    const parentPid = parent.pid ?? 0;
    try {
      await waitFor(() => existsSync(readyFile), "the parent to be ready");
      await narrowCi({ pids: [parentPid] });
      const outcome = await runSession(
        tlsClient("ci"),
        {
          dump: {
            checkpointId: "ci-grown",
            parentCheckpointId: "",
            options: CriuOptions.fromPartial({ pid: parentPid, leaveRunning: true, notifyScripts: true }),
          },
          callbackTimeoutMs: 30_000,
        },
        async (cb) => {
          // The check before CRIU passed (the tree was the parent alone); now it grows a child.
          if (cb.script === "pre-dump") {
            process.kill(parentPid, "SIGUSR1");
            await waitFor(() => existsSync(childFile), "the child to be forked");
          }
          return { success: true };
        },
      );
      const childPid = Number(readFileSync(childFile, "utf8"));
      expect(outcome.callbacks.map((c) => c.script)).toContain("pre-dump");
      expect(outcome.callbacks.map((c) => c.script)).not.toContain("post-dump");
      expect(outcome.error && status[outcome.error.code]).toBe("PERMISSION_DENIED");
      expect(outcome.error?.details).toMatch(
        new RegExp(
          `the frozen tree under pid ${parentPid} holds pid ${childPid} .*outside grant "ci"; dump refused`,
        ),
      );
      expect(existsSync(join(gw.imagesRoot, "ci-grown"))).toBe(false);
      expect(isAlive(parentPid) && isAlive(childPid)).toBe(true);
    } finally {
      process.kill(-parentPid, "SIGKILL");
      await new Promise((resolve) => parent.once("exit", resolve));
      await restorePolicy();
    }
  });

  test("a cgroup grant covers the processes under that cgroup v2 path, and nothing else", async () => {
    const mount = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .find((l) => l.includes(" - cgroup2 "))
      ?.split(" ")[4];
    expect(mount, "a cgroup v2 hierarchy is mounted").toBeDefined();
    const name = `criu-gw-test-${process.pid}`;
    const dir = join(mount ?? "", name);
    mkdirSync(dir);
    const inside = await rootCounter("cg-inside");
    const outside = await rootCounter("cg-outside");
    try {
      writeFileSync(join(dir, "cgroup.procs"), String(inside.pid));
      await narrowCi({ cgroups: [`/${name}`] });
      const ok = await dump(tlsClient("ci"), "ci-cg-inside", inside.pid);
      expect(ok.checkpoint?.checkpointId).toBe("ci-cg-inside");
      denied(
        await failure(dump(tlsClient("ci"), "ci-cg-outside", outside.pid)),
        new RegExp(`pid ${outside.pid} \\(uid 0, cgroup /\\) is outside grant "ci"`),
      );
    } finally {
      await restorePolicy();
      inside.child.kill("SIGKILL");
      await inside.exited;
      rmdirSync(dir);
    }
  });

  test("checkpoints: ids outside the caller's prefixes are neither writable nor readable nor listed", async () => {
    const client = tlsClient("ci");
    const p = await rootCounter("ns");
    denied(
      await failure(dump(client, "prod-ns", p.pid)),
      /grant "ci" does not allow writing checkpoint prod-ns/,
    );
    await dump(gw.client, "prod-db", (await rootCounter("prod")).pid);
    await dump(client, "ci-ns", p.pid);
    denied(
      await failure(call((cb) => client.getCheckpoint({ checkpointId: "prod-db" }, cb))),
      /does not allow reading checkpoint prod-db/,
    );
    denied(
      await failure(call((cb) => client.deleteCheckpoint({ checkpointId: "prod-db" }, cb))),
      /does not allow deleting checkpoint prod-db/,
    );
    // Refused whether or not the checkpoint exists: the answer tells nothing about other namespaces.
    denied(
      await failure(call((cb) => client.getCheckpoint({ checkpointId: "prod-nothing" }, cb))),
      /does not allow reading checkpoint prod-nothing/,
    );
    const ids = (await list(client)).map((c) => c.checkpointId);
    expect(ids).toContain("ci-ns");
    expect(ids.some((id) => id.startsWith("prod-"))).toBe(false);
    expect((await list(gw.client)).map((c) => c.checkpointId)).toContain("prod-db");
    // Shared checkpoints are readable but not deletable.
    await dump(gw.client, "shared-base", (await rootCounter("shared2")).pid);
    await call((cb) => client.getCheckpoint({ checkpointId: "shared-base" }, cb));
    denied(
      await failure(call((cb) => client.deleteCheckpoint({ checkpointId: "shared-base" }, cb))),
      /does not allow deleting checkpoint shared-base/,
    );
    await call((cb) => client.deleteCheckpoint({ checkpointId: "ci-ns" }, cb));
  });

  test("deleting a parent names only the children the caller may read", async () => {
    plantCheckpoint(gw.imagesRoot, "ci-parent", { kind: "pre-dump" });
    plantCheckpoint(gw.imagesRoot, "ci-parent-kid", { parentId: "ci-parent" });
    plantCheckpoint(gw.imagesRoot, "prod-secret-kid", { parentId: "ci-parent" });
    const err = await failure(
      call((cb) => tlsClient("ci").deleteCheckpoint({ checkpointId: "ci-parent" }, cb)),
    );
    expect(status[err.code]).toBe("FAILED_PRECONDITION");
    expect(err.details).toBe(
      "checkpoint ci-parent is the parent of ci-parent-kid and of 1 checkpoint you may not read; they must be deleted first",
    );
    // An administrator reads everything, and is told everything.
    const rootErr = await failure(
      call((cb) => gw.client.deleteCheckpoint({ checkpointId: "ci-parent" }, cb)),
    );
    expect(rootErr.details).toMatch(
      /is the parent of (ci-parent-kid, prod-secret-kid|prod-secret-kid, ci-parent-kid);/,
    );
    for (const id of ["prod-secret-kid", "ci-parent-kid", "ci-parent"]) {
      await call((cb) => gw.client.deleteCheckpoint({ checkpointId: id }, cb));
    }
  });

  test("admin-class options are refused to a grant without them; never-class to everyone", async () => {
    const p = await rootCounter("opts");
    const client = tlsClient("ci");
    denied(
      await failure(dump(client, "ci-opts", p.pid, { manageCgroups: true })),
      /grant "ci" does not allow admin-class options/,
    );
    denied(await failure(dump(client, "ci-opts", p.pid, { execCmd: ["/bin/true"] })), /exec_cmd/);
    expect(gw.audit.at(-2)?.optionClasses).toEqual(["safe", "admin"]);
    // Each makes CRIU act as root beyond the process: memory served to anyone on the network,
    // hard links made in a host directory, host sockets connected to by path.
    for (const option of [{ lazyPages: true }, { linkRemap: true }, { extUnixSk: true }]) {
      denied(
        await failure(dump(client, "ci-opts", p.pid, option)),
        /grant "ci" does not allow admin-class options/,
      );
    }
    expect(existsSync(join(gw.imagesRoot, "ci-opts"))).toBe(false);
  });

  test("externals answered to query-ext-files are admin-class: a non-admin's veto the dump, which rolls back", async () => {
    const p = await rootCounter("ext-files");
    const start = (checkpointId: string) => ({
      dump: {
        checkpointId,
        parentCheckpointId: "",
        options: CriuOptions.fromPartial({
          pid: p.pid,
          leaveRunning: true,
          notifyScripts: true,
          logLevel: 4,
        }),
      },
      callbackTimeoutMs: 30_000,
    });
    const answer = (cb: { script: string }) =>
      cb.script === "query-ext-files" ? { success: true, external: ["file[1f:2a]"] } : { success: true };
    const refused = await runSession(tlsClient("ci"), start("ci-ext-files"), answer);
    expect(refused.callbacks.map((c) => c.script)).toEqual(["pre-dump", "query-ext-files"]);
    expect(refused.error && status[refused.error.code]).toBe("PERMISSION_DENIED");
    expect(refused.error?.details).toMatch(
      /notify_reply to query-ext-files names external resources, .* reserved to administrators; the dump was rolled back/,
    );
    expect(existsSync(join(gw.imagesRoot, "ci-ext-files"))).toBe(false);
    const now = p.read();
    await waitFor(() => p.read() > now, "the process to run on after the veto");
    // An administrator's externals reach CRIU, which adds them.
    const granted = await runSession(gw.client, start("root-ext-files"), answer);
    expect(granted.error).toBeUndefined();
    const log = await call<{ text: string }>((cb) =>
      gw.client.getCheckpointLog({ checkpointId: "root-ext-files", kind: 0 }, cb),
    );
    expect(log.text).toContain("Adding external object: file[1f:2a]");
  });

  test("auto_dedup needs write access to the whole parent chain it would punch holes in", async () => {
    const p = await rootCounter("dedup");
    const record = { rootPid: p.pid, processes: [{ pid: p.pid, uids: [0, 0, 0, 0], cgroup: "/" }] };
    // Checkpoints ci may read but not write, and one of its own on top of them.
    const shared = plantCheckpoint(gw.imagesRoot, "shared-dedup", record);
    writeFileSync(join(shared, "pages-1.img"), "p".repeat(8192));
    plantCheckpoint(gw.imagesRoot, "ci-dedup-child", { ...record, parentId: "shared-dedup" });
    const before = readFileSync(join(shared, "pages-1.img"));
    const client = tlsClient("ci");
    const restoreShared = /does not allow writing checkpoint shared-dedup, which auto_dedup would change/;
    denied(await failure(restoreWith(client, "shared-dedup", { autoDedup: true })), restoreShared);
    denied(
      await failure(restoreWith(client, "ci-dedup-child", { autoDedup: true })),
      /does not allow writing checkpoint shared-dedup, which auto_dedup would change: CRIU punches the pages it restores out of checkpoint ci-dedup-child and every ancestor/,
    );
    const onShared =
      /does not allow writing checkpoint shared-dedup, which auto_dedup would change: CRIU punches the pages it finds unchanged/;
    for (const parent of ["shared-dedup", "ci-dedup-child"]) {
      denied(
        await failure(
          dumpWith(client, "ci-dedup-new", { pid: p.pid, leaveRunning: true, autoDedup: true }, parent),
        ),
        onShared,
      );
    }
    // The Session paths are held to the same.
    const options = CriuOptions.fromPartial({ pid: p.pid, leaveRunning: true, autoDedup: true });
    for (const start of [
      { restore: { checkpointId: "shared-dedup", options } },
      { dump: { checkpointId: "ci-dedup-new", parentCheckpointId: "ci-dedup-child", options } },
      { iterativeDump: { checkpointId: "ci-dedup-new", parentCheckpointId: "ci-dedup-child", options } },
    ]) {
      const out = await runSession(client, { ...start, callbackTimeoutMs: 0 });
      expect(out.error && status[out.error.code]).toBe("PERMISSION_DENIED");
      expect(out.error?.details).toMatch(
        /does not allow writing checkpoint shared-dedup, which auto_dedup would change/,
      );
    }
    // Refused before any worker started; the shared images are as they were.
    expect(
      rootEvents.some((e) =>
        ["shared-dedup", "ci-dedup-child", "ci-dedup-new"].includes(e.started?.checkpointId ?? ""),
      ),
    ).toBe(false);
    expect(readFileSync(join(shared, "pages-1.img")).equals(before)).toBe(true);
    expect(existsSync(join(gw.imagesRoot, "ci-dedup-new"))).toBe(false);
    // On its own checkpoints ci may deduplicate.
    await dump(client, "ci-dedup-own", p.pid, { leaveRunning: false });
    await p.exited;
    const back = await restoreWith(client, "ci-dedup-own", { autoDedup: true });
    restored.push(back.pid);
    expect(back.pid).toBe(p.pid);
  });

  test("a restore re-creating processes outside the grant is refused", async () => {
    const rootProc = await rootCounter("rootproc");
    await dump(gw.client, "ci-rootproc", rootProc.pid);
    // Narrow ci to a pid range that leaves the recorded process out.
    const outside = rootProc.pid === 1 ? 2 : rootProc.pid - 1;
    try {
      await narrowCi({ pids: [outside] });
      denied(
        await failure(
          call((cb) => tlsClient("ci").restore({ checkpointId: "ci-rootproc", options: undefined }, cb)),
        ),
        new RegExp(
          `pid ${rootProc.pid} \\(uid 0.*is outside grant "ci"; checkpoint ci-rootproc would re-create it`,
        ),
      );
    } finally {
      await restorePolicy();
    }
  });

  test("images a caller imported are never restored on a non-admin's behalf", async () => {
    // A page server's checkpoint, as the gateway publishes one (kind PAGES, no process record).
    plantCheckpoint(gw.imagesRoot, "ci-imported", { kind: "pages" });
    const client = tlsClient("ci");
    const imported = await call<{ checkpoint?: Checkpoint }>((cb) =>
      client.importImages(
        {
          checkpointId: "ci-imported",
          files: [{ name: "inventory.img", data: Buffer.from("forged") }],
          rootPid: 1,
        },
        cb,
      ),
    );
    expect(imported.checkpoint?.kind).toBe(CheckpointKind.CHECKPOINT_KIND_DUMP);
    // Whatever the caller wrote would be re-created as whoever the images say, by root.
    denied(
      await failure(call((cb) => client.restore({ checkpointId: "ci-imported", options: undefined }, cb))),
      /checkpoint ci-imported has no record of the processes it holds, so only an administrator may restore it/,
    );
  });

  test("imported images reach no non-admin through a parent chain: no dump on them, no restore of a descendant", async () => {
    plantCheckpoint(gw.imagesRoot, "ci-imp-base", { kind: "pages" });
    const client = tlsClient("ci");
    await call((cb) =>
      client.importImages(
        {
          checkpointId: "ci-imp-base",
          files: [{ name: "inventory.img", data: Buffer.from("forged") }],
          rootPid: 1,
        },
        cb,
      ),
    );
    // A dump on it would take unchanged memory from the caller's images.
    const p = await rootCounter("imp-parent");
    const importedParent =
      /parent checkpoint ci-imp-base holds images imported with ImportImages; a dump on it takes unchanged memory from them, so only an administrator may use it as a parent/;
    denied(
      await failure(dumpWith(client, "ci-on-imported", { pid: p.pid, leaveRunning: true }, "ci-imp-base")),
      importedParent,
    );
    const session = await runSession(client, {
      dump: {
        checkpointId: "ci-on-imported",
        parentCheckpointId: "ci-imp-base",
        options: CriuOptions.fromPartial({ pid: p.pid, leaveRunning: true }),
      },
      callbackTimeoutMs: 0,
    });
    expect(session.error && status[session.error.code]).toBe("PERMISSION_DENIED");
    expect(session.error?.details).toMatch(importedParent);
    expect(rootEvents.some((e) => e.started?.checkpointId === "ci-on-imported")).toBe(false);
    // A descendant whose recorded processes are all granted is refused for where its memory came from.
    plantCheckpoint(gw.imagesRoot, "ci-imp-child", {
      parentId: "ci-imp-base",
      rootPid: p.pid,
      processes: [{ pid: p.pid, uids: [0, 0, 0, 0], cgroup: "/" }],
    });
    denied(
      await failure(restoreWith(client, "ci-imp-child")),
      /checkpoint ci-imp-child descends from checkpoint ci-imp-base, which holds images imported with ImportImages; CRIU would restore whatever they say, as root, so only an administrator may restore it/,
    );
    expect(rootEvents.some((e) => e.started?.checkpointId === "ci-imp-child")).toBe(false);
    // An administrator may: the gateway's own checks come next (here, that the forged parent
    // records no dump time).
    const admin = await failure(
      dumpWith(gw.client, "root-on-imported", { pid: p.pid, leaveRunning: true }, "ci-imp-base"),
    );
    expect(status[admin.code]).toBe("FAILED_PRECONDITION");
  });

  test("concurrent operations are limited per identity; the slot returns when the call ends", async () => {
    const p = await rootCounter("held");
    const client = tlsClient("ci");
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached: () => void = () => {};
    const atCallback = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const session = runSession(
      client,
      {
        dump: {
          checkpointId: "ci-held",
          parentCheckpointId: "",
          options: CriuOptions.fromPartial({ pid: p.pid, leaveRunning: true, notifyScripts: true }),
        },
        callbackTimeoutMs: 60_000,
      },
      async () => {
        reached();
        await held;
        return { success: true };
      },
    );
    await atCallback;
    const busy = await failure(version(client));
    expect(status[busy.code]).toBe("RESOURCE_EXHAUSTED");
    expect(busy.details).toMatch(/already runs 1 operations, the most grant "ci" allows/);
    await version(gw.client); // other identities are not held up
    release();
    const outcome = await session;
    expect(outcome.error).toBeUndefined();
    await version(client);
  });

  test("a request larger than the grant allows is RESOURCE_EXHAUSTED, a Session's later messages too", async () => {
    const limited: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
    limited.grants[1] = { ...limited.grants[1], limits: { max_request_bytes: 1024 } };
    writePolicy(limited);
    expect((await gw.gateway.reload()).policy).toBe("reloaded");
    try {
      const p = await rootCounter("sized");
      const client = tlsClient("ci");
      const paths = Array.from({ length: 40 }, (_, i) => `/srv/${"x".repeat(40)}/${i}`);
      const big = await failure(dump(client, "ci-sized", p.pid, { irmapScanPaths: paths }));
      expect(status[big.code]).toBe("RESOURCE_EXHAUSTED");
      expect(big.details).toMatch(
        /^the request is \d+ bytes, more than the 1024 the policy allows grant "ci"$/,
      );
      expect(existsSync(join(gw.imagesRoot, "ci-sized"))).toBe(false);
      expect(gw.audit.findLast((r) => r.rpc === "Dump")).toMatchObject({
        grant: "ci",
        result: "RESOURCE_EXHAUSTED",
      });
      // A Session whose start fits, and whose answer to a callback does not: the dump is vetoed.
      const outcome = await runSession(
        client,
        {
          dump: {
            checkpointId: "ci-sized",
            parentCheckpointId: "",
            options: CriuOptions.fromPartial({ pid: p.pid, leaveRunning: true, notifyScripts: true }),
          },
          callbackTimeoutMs: 60_000,
        },
        () => ({ success: true, external: paths }),
      );
      expect(outcome.callbacks.length).toBeGreaterThan(0);
      expect(status[outcome.error?.code ?? 0]).toBe("RESOURCE_EXHAUSTED");
      expect(outcome.error?.details).toMatch(/more than the 1024 the policy allows grant "ci"/);
      expect(existsSync(join(gw.imagesRoot, "ci-sized"))).toBe(false);
      const now = p.read();
      await waitFor(() => p.read() > now, "the process to run on after the vetoed dump");
      // Within the limit, the same caller goes on.
      await version(client);
    } finally {
      await restorePolicy();
    }
  });

  test("a running page server holds its caller's operation slot until it stops or ends", async () => {
    const client = tlsClient("ci");
    const start = (checkpointId: string) =>
      call<StartPageServerResponse>((cb) =>
        client.startPageServer({ checkpointId, address: "127.0.0.1", port: 0, options: undefined }, cb),
      );
    await start("ci-ps-stopped");
    // ci may run one operation at a time, and its page server is one.
    const busy = await failure(version(client));
    expect(status[busy.code]).toBe("RESOURCE_EXHAUSTED");
    expect(busy.details).toMatch(/already runs 1 operations, the most grant "ci" allows/);
    expect(status[(await failure(start("ci-ps-second"))).code]).toBe("RESOURCE_EXHAUSTED");
    await call((cb) => client.stopPageServer({ checkpointId: "ci-ps-stopped" }, cb));
    await version(client);
    // A server that ends on its own gives the slot back too.
    const { pageServer } = await start("ci-ps-killed");
    process.kill(pageServer?.pid ?? 0, "SIGKILL");
    await waitFor(
      () =>
        rootEvents.some(
          (e) =>
            e.finished &&
            rootEvents.some(
              (s) => s.operationId === e.operationId && s.started?.checkpointId === "ci-ps-killed",
            ),
        ),
      "the killed page server's finished event",
    );
    await version(client);
  });

  test("a subscriber sees only operations on checkpoints it may read", async () => {
    const events: Event[] = [];
    const sub = tlsClient("ci").subscribe({ kinds: [], pid: 0, checkpointId: "" });
    sub.on("data", (r: { event?: Event }) => {
      if (r.event) events.push(r.event);
    });
    sub.on("error", () => {});
    await waitFor(() => gw.gateway.subscriberCount() >= 2, "the subscription to be open");
    // One subscription is all ci's grant allows.
    const second = await new Promise<ServiceError>((resolve) => {
      const extra = tlsClient("ci").subscribe({ kinds: [], pid: 0, checkpointId: "" });
      extra.on("error", resolve);
      extra.on("data", () => {});
    });
    expect(status[second.code]).toBe("RESOURCE_EXHAUSTED");
    expect(second.details).toMatch(/already has 1 subscriptions, the most grant "ci" allows/);
    await dump(gw.client, "prod-hidden", (await rootCounter("hidden")).pid);
    await dump(tlsClient("ci"), "ci-seen", (await rootCounter("seen")).pid);
    const seenId = () => events.find((e) => e.started?.checkpointId === "ci-seen")?.operationId;
    await waitFor(() => events.some((e) => e.operationId === seenId() && e.finished), "ci-seen to finish");
    expect(events.some((e) => e.started?.checkpointId === "prod-hidden")).toBe(false);
    expect(rootEvents.some((e) => e.started?.checkpointId === "prod-hidden")).toBe(true);
    sub.cancel();
  });
  test("a policy reload judges open subscriptions again: narrowed, they see less; revoked, they end", async () => {
    const events: Event[] = [];
    let ended: ServiceError | undefined;
    const sub = tlsClient("ci").subscribe({ kinds: [], pid: 0, checkpointId: "" });
    sub.on("data", (r: { event?: Event }) => {
      if (r.event) events.push(r.event);
    });
    sub.on("error", (err: ServiceError) => {
      ended = err;
    });
    await waitFor(() => gw.gateway.subscriberCount() >= 2, "the subscription to be open");
    const finished = (id: string) => {
      const op = events.find((e) => e.started?.checkpointId === id)?.operationId;
      return op !== undefined && events.some((e) => e.operationId === op && e.finished);
    };
    const p = await rootCounter("watched");
    try {
      await dump(gw.client, "shared-before", p.pid);
      await waitFor(() => finished("shared-before"), "ci to see shared-before, which it may read");
      const narrowed: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
      narrowed.grants[1] = { ...narrowed.grants[1], checkpoints: { read: ["ci-"], write: ["ci-"] } };
      writePolicy(narrowed);
      expect((await gw.gateway.reload()).policy).toBe("reloaded");
      await dump(gw.client, "shared-after", p.pid);
      await dump(gw.client, "ci-after", p.pid);
      await waitFor(() => finished("ci-after"), "ci to see ci-after");
      expect(events.some((e) => e.started?.checkpointId === "shared-after")).toBe(false);
      // Subscribe taken out of ci's grant: the stream ends at once, and says why.
      const revoked: { grants: Record<string, unknown>[] } = structuredClone(POLICY);
      revoked.grants[1] = { ...revoked.grants[1], rpcs: ["Version"] };
      writePolicy(revoked);
      expect((await gw.gateway.reload()).policy).toBe("reloaded");
      await waitFor(() => ended !== undefined, "the revoked subscription to end");
      expect(status[ended?.code ?? 0]).toBe("PERMISSION_DENIED");
      expect(ended?.details).toBe('the policy in force no longer allows Subscribe to grant "ci"');
      await waitFor(() => gw.gateway.subscriberCount() === 1, "only root's subscription to be left");
      expect(gw.audit.findLast((r) => r.rpc === "Subscribe" && r.grant === "ci")).toMatchObject({
        result: "PERMISSION_DENIED",
      });
    } finally {
      sub.cancel();
      await restorePolicy();
    }
  });
});

describe("reloading without a restart", () => {
  test("a new certificate is served to new connections; a broken one is refused and the old one stays", async () => {
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect(
          {
            host: "127.0.0.1",
            port: tlsPort,
            ca: pem(ca).cert,
            servername: "localhost",
            ...clientPem("ci"),
            ALPNProtocols: ["h2"],
          },
          () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.destroy();
          },
        );
        socket.once("error", reject);
      });
    const before = await fingerprint();
    issue(certDir, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
    expect((await gw.gateway.reload()).tls).toBe(true);
    const after = await fingerprint();
    expect(after).not.toBe(before);
    await version(tlsClient("ci"));
    // A key that does not fit the certificate: refused, and the certificate in use stays.
    issue(certDir, ca, "other", "other", ["DNS:localhost"]);
    writeFileSync(
      join(certDir, "server.key"),
      pem({ cert: join(certDir, "other.pem"), key: join(certDir, "other.key") }).key,
    );
    expect((await gw.gateway.reload()).tls).toBe(false);
    expect(await fingerprint()).toBe(after);
    issue(certDir, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
    expect((await gw.gateway.reload()).tls).toBe(true);
  });

  test("a policy with a mistake is refused and the one in force stays", async () => {
    writeFileSync(policyFile, JSON.stringify({ grants: [{ name: "x", identities: [{ uid: 0 }] }] }));
    const result = await gw.gateway.reload();
    expect(result.policy).toMatch(/grants\[0\]\.identities\[0\]: unknown key "uid"/);
    await version(tlsClient("ci"));
    writePolicy(POLICY);
    expect((await gw.gateway.reload()).policy).toBe("reloaded");
  });
});

function clientPem(name: string): { cert: Buffer; key: Buffer } {
  return pem({ cert: join(certDir, `${name}.pem`), key: join(certDir, `${name}.key`) });
}

describe("listeners", () => {
  test("the unix socket gets the configured owner, group and mode", async () => {
    const g = await startTestGateway((dir) => ({
      listen: [`unix:${join(dir, "owned.sock")}`],
      unixSocketMode: 0o660,
      unixSocketOwner: NOBODY,
      unixSocketGroup: NOBODY,
    }));
    try {
      const st = statSync(join(g.dir, "owned.sock"));
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o660);
      expect([st.uid, st.gid]).toEqual([NOBODY, NOBODY]);
    } finally {
      await g.close();
    }
  });

  test("plain TCP with --insecure: callers are anonymous and get nothing unless the policy says so", async () => {
    const g = await startTestGateway({ listen: ["127.0.0.1:0"], insecure: true });
    const client = new CriuServiceClient(g.gateway.addresses[0] ?? "", credentials.createInsecure());
    try {
      denied(await failure(version(client)), /no grant of the gateway's policy matches anonymous/);
    } finally {
      client.close();
      await g.close();
    }
    const open = await startTestGateway((dir) => {
      const file = join(dir, "anon.json");
      writeFileSync(
        file,
        JSON.stringify({
          grants: [{ name: "anyone", identities: [{ anonymous: true }], rpcs: ["Version"] }],
        }),
      );
      return { listen: ["127.0.0.1:0"], insecure: true, policyFile: file };
    });
    const c2 = new CriuServiceClient(open.gateway.addresses[0] ?? "", credentials.createInsecure());
    try {
      await version(c2);
      expect(open.audit.at(-1)).toMatchObject({ grant: "anyone", result: "OK" });
    } finally {
      c2.close();
      await open.close();
    }
  });

  test("a gateway refuses to start on a policy with a mistake, naming it", async () => {
    await expect(
      startTestGateway((dir) => {
        const file = join(dir, "bad.json");
        writeFileSync(
          file,
          JSON.stringify({ grants: [{ name: "a", identities: [{ unix_uid: 0 }], rpcs: ["Dumpp"] }] }),
        );
        return { policyFile: file };
      }),
    ).rejects.toThrow(/bad\.json: grants\[0\]\.rpcs\[0\]: "Dumpp" is not an RPC/);
  });
});

afterAll(() => {
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});
