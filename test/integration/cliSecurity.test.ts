// The security settings as an operator meets them on the command line: TLS flags on both sides,
// --insecure shouting in the log, the audit log file, SIGHUP reloads, policy-check.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { packageRoot } from "../../src/packageRoot.js";
import { type CertFiles, issue, makeCa } from "../support/certs.js";
import { waitFor } from "../support/workload.js";

const bin = join(packageRoot, "bin", "criu-gateway.js");
let dir: string;
let ca: CertFiles;

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("node", [bin, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

interface Served {
  child: ChildProcess;
  log(): string;
  /** The TCP address it listens on, from its "gateway listening" line. */
  tcp(): string;
  stop(): Promise<number | null>;
}

async function serve(args: string[]): Promise<Served> {
  let log = "";
  const child = spawn("node", [bin, "serve", "--images-root", join(dir, "images"), ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitFor(
    () => log.includes('"gateway listening"') || child.exitCode !== null,
    "the gateway to listen",
  );
  return {
    child,
    log: () => log,
    tcp() {
      const line = log.split("\n").find((l) => l.includes('"gateway listening"')) ?? "{}";
      const addresses = (JSON.parse(line) as { addresses?: string[] }).addresses ?? [];
      return addresses.find((a) => !a.startsWith("unix:")) ?? "";
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exit;
    },
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-clisec-"));
  ca = makeCa(dir, "ca");
  issue(dir, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
  issue(dir, ca, "ci", "ci", ["URI:spiffe://example/ci"]);
  writeFileSync(
    join(dir, "policy.json"),
    JSON.stringify({
      grants: [
        { name: "root", identities: [{ unix_uid: 0 }], admin: true },
        { name: "ci", identities: [{ cert_san: "spiffe://example/ci" }], rpcs: ["Version"] },
      ],
    }),
  );
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("serve", () => {
  test("refuses plain TCP without --insecure, and --insecure off loopback, before binding anything", async () => {
    const plain = await run("serve", "--listen", "127.0.0.1:0", "--images-root", join(dir, "i1"));
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/listen: 127\.0\.0\.1:0: TCP needs TLS/);
    const wide = await run("serve", "--listen", "0.0.0.0:0", "--insecure", "--images-root", join(dir, "i1"));
    expect(wide.code).toBe(2);
    expect(wide.stderr).toMatch(/plain TCP \(--insecure\) is allowed on loopback only/);
    const half = await run("serve", "--listen", "0.0.0.0:0", "--tls-cert", join(dir, "server.pem"));
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--tls-cert and --tls-key go together/);
  });

  test("--insecure on loopback is logged as an insecure listener; anonymous callers get nothing", async () => {
    const gw = await serve(["--listen", "127.0.0.1:0", "--insecure"]);
    try {
      expect(gw.log()).toMatch(/"level":"warn".*"msg":"INSECURE LISTENER: plain TCP without TLS/);
      const denied = await run("version", "--addr", gw.tcp());
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/PERMISSION_DENIED: no grant of the gateway's policy matches anonymous/);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  test("mutual TLS end to end: the client's certificate, the policy, the audit log file, SIGHUP", async () => {
    const audit = join(dir, "audit.log");
    const sock = join(dir, "gw.sock");
    const gw = await serve([
      "--listen",
      `unix:${sock}`,
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      join(dir, "server.pem"),
      "--tls-key",
      join(dir, "server.key"),
      "--tls-client-ca",
      ca.cert,
      "--policy",
      join(dir, "policy.json"),
      "--audit-log",
      audit,
    ]);
    try {
      const addr = gw.tcp().replace("127.0.0.1", "localhost");
      const tlsArgs = ["--addr", addr, "--tls-ca", ca.cert];
      const asCi = [...tlsArgs, "--tls-cert", join(dir, "ci.pem"), "--tls-key", join(dir, "ci.key")];
      const ok = await run("version", ...asCi);
      expect(ok.stderr).toBe("");
      expect(ok.stdout).toMatch(/^CRIU \d+\.\d+/);
      const notGranted = await run("ls", ...asCi);
      expect(notGranted.stderr).toMatch(/PERMISSION_DENIED: grant "ci" does not allow ListCheckpoints/);
      const noCert = await run("version", ...tlsArgs);
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toMatch(/UNAVAILABLE/);
      // The audit file: one JSON line per call that reached the gateway, private to root.
      const lines = readFileSync(audit, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => [l.rpc, l.result])).toEqual([
        ["Version", "OK"],
        ["ListCheckpoints", "PERMISSION_DENIED"],
      ]);
      expect(lines[0]).toMatchObject({
        msg: "audit",
        identity: 'certificate cn="ci" san=spiffe://example/ci',
        grant: "ci",
      });
      expect(statSync(audit).mode & 0o777).toBe(0o600);
      // SIGHUP: a policy granting ListCheckpoints takes effect without a restart.
      writeFileSync(
        join(dir, "policy.json"),
        JSON.stringify({
          grants: [
            {
              name: "ci",
              identities: [{ cert_san: "spiffe://example/ci" }],
              rpcs: ["Version", "ListCheckpoints"],
            },
          ],
        }),
      );
      // SIGHUP also follows a rotated audit log (logrotate renames it, then signals).
      renameSync(audit, `${audit}.1`);
      gw.child.kill("SIGHUP");
      await waitFor(() => gw.log().includes('"policy reloaded"'), "the policy to be reloaded");
      const nowGranted = await run("ls", ...asCi);
      expect(nowGranted.stderr).toBe("");
      expect(nowGranted.code).toBe(0);
      const fresh = readFileSync(audit, "utf8").trim().split("\n");
      expect(fresh.map((l) => (JSON.parse(l) as { rpc: string; result: string }).rpc)).toEqual([
        "ListCheckpoints",
      ]);
      expect(statSync(audit).mode & 0o777).toBe(0o600);
      expect(readFileSync(`${audit}.1`, "utf8").trim().split("\n")).toHaveLength(2);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});

describe("policy-check", () => {
  test("a valid policy: what it grants, in one line each", async () => {
    const r = await run("policy-check", join(packageRoot, "docs", "policy.example.json"));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid, 3 grants\n {2}root: admin\n {2}ci: Version, FeatureCheck, Dump/);
  });

  test("a policy with a mistake: exit 2, and the place of the mistake", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({ grants: [{ name: "x", identities: [{ unix_uid: 0 }], option_classes: ["never"] }] }),
    );
    const r = await run("policy-check", bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.json: grants\[0\]\.option_classes\[0\]: "never" options/);
  });
});
