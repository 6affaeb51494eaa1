// The Python client (clients/python) installed with pip and run against a real gateway with real
// CRIU: its own unittest suite dumps, restores, vetoes a callback, reads an error's details, and
// connects over the unix socket and over mutual TLS.
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/packageRoot.js";
import { issue, makeCa } from "../support/certs.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft } from "../support/processes.js";

// Debian's python3, which has python3-grpcio and python3-protobuf (scripts/bootstrap.sh --test).
const PYTHON = "/usr/bin/python3";
const run = promisify(execFile);

const CLIENT_SAN = "spiffe://example/python-client";

let gw: TestGateway;
let scratch: string;
let certs: string;
let site: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "criu-gw-python-"));
  certs = join(scratch, "certs");
  mkdirSync(certs);
  const ca = makeCa(certs, "ca");
  const server = issue(certs, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
  issue(certs, ca, "client", "client", [`URI:${CLIENT_SAN}`]);
  const policyFile = join(scratch, "policy.json");
  writeFileSync(
    policyFile,
    JSON.stringify({
      grants: [
        { name: "root", identities: [{ unix_uid: 0 }], admin: true },
        { name: "client", identities: [{ cert_san: CLIENT_SAN }], rpcs: ["Version"] },
      ],
    }),
  );
  // The unix socket for most tests; TCP with mutual TLS for the client's TLS settings.
  gw = await startTestGateway((dir) => ({
    listen: [`unix:${join(dir, "gw.sock")}`, "127.0.0.1:0"],
    tls: { certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert },
    tlsReloadIntervalMs: 0,
    policyFile,
  }));
  site = join(scratch, "site");
  // pip builds in the directory it installs from: a copy keeps build/ and egg-info out of the tree.
  const source = join(scratch, "source");
  cpSync(join(packageRoot, "clients", "python"), source, { recursive: true });
  await run(
    PYTHON,
    [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--no-deps",
      "--no-build-isolation",
      "--no-index",
      "--target",
      site,
      source,
    ],
    { env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" } },
  );
}, 120_000);

afterAll(async () => {
  await expectNothingLeft(gw);
  await gw.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("the Python client", () => {
  it("installs with pip and imports from where pip put it, with its generated stubs and types", async () => {
    const { stdout } = await run(
      PYTHON,
      [
        "-c",
        "import criu_gateway; print(criu_gateway.__file__, criu_gateway.pb_grpc.CriuServiceStub.__name__)",
      ],
      { env: { ...process.env, PYTHONPATH: site }, cwd: scratch },
    );
    expect(stdout.trim()).toBe(`${join(site, "criu_gateway", "__init__.py")} CriuServiceStub`);
    // Type checkers find the hand-written layer's hints (py.typed) and the messages' (.pyi).
    expect(existsSync(join(site, "criu_gateway", "py.typed"))).toBe(true);
    expect(existsSync(join(site, "criu_gateway", "_proto", "criu", "gateway", "v1", "gateway_pb2.pyi"))).toBe(
      true,
    );
  });

  it("passes its tests against a real gateway: dump, restore, a vetoed callback, an error's details", async () => {
    const result = await run(
      PYTHON,
      ["-m", "unittest", "discover", "-v", "-s", join(packageRoot, "clients", "python", "tests")],
      {
        env: {
          ...process.env,
          PYTHONPATH: site,
          // No __pycache__ left in the source tree the tests are discovered in.
          PYTHONDONTWRITEBYTECODE: "1",
          CRIU_GATEWAY_TEST_ADDR: gw.address,
          CRIU_GATEWAY_TEST_TLS_ADDR: `localhost:${gw.gateway.addresses[1]?.split(":").pop()}`,
          CRIU_GATEWAY_TEST_CERTS: certs,
          CRIU_GATEWAY_TEST_DIR: gw.dir,
        },
        cwd: scratch,
        timeout: 240_000,
      },
    ).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
    // unittest reports on stderr; the whole report is the assertion's message when it fails.
    expect(output, output).toMatch(/^OK$/m);
    const ran = Number(/^Ran (\d+) tests?/m.exec(output)?.[1] ?? 0);
    expect(ran, output).toBeGreaterThanOrEqual(11);
    expect(output, output).not.toMatch(/skipped/);
  }, 300_000);
});
