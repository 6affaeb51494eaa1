// The gateway under systemd: the unit files pass systemd's own verifier, and a gateway started by
// systemd-socket-activate (systemd's tool for exactly this) serves real calls on the sockets it
// inherits, unix and TCP with TLS, reports READY=1 and STOPPING=1 on $NOTIFY_SOCKET from its
// main process, and keeps the inherited descriptors out of its children.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { credentials, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CriuServiceClient, type VersionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { packageRoot } from "../../src/packageRoot.js";
import { issue, makeCa, pem } from "../support/certs.js";
import { freePort } from "../support/freePort.js";
import { call, criuBin, failure } from "../support/gateway.js";
import { waitFor } from "../support/workload.js";

const run = promisify(execFile);
const UNITS = ["criu-gateway.socket", "criu-gateway.service"];

// Stands in for systemd's end of NOTIFY_SOCKET (a unix datagram socket, which Node cannot open):
// prints each datagram on one line, and exits after STOPPING=1.
const NOTIFY_RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    message = s.recv(4096).decode()
    print(message.replace("\\n", " | "), flush=True)
    if "STOPPING=1" in message:
        break
`;

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-systemd-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the systemd units", () => {
  it("pass systemd-analyze verify without a warning", async () => {
    // The units name the install path /opt/criu-gateway; verify checks that ExecStart exists, so
    // they are verified pointing at this tree instead, unchanged otherwise.
    for (const unit of UNITS) {
      const text = readFileSync(join(packageRoot, "deploy", "systemd", unit), "utf8");
      writeFileSync(join(dir, unit), text.replaceAll("/opt/criu-gateway", packageRoot));
    }
    const { stdout, stderr } = await run("systemd-analyze", ["verify", ...UNITS.map((u) => join(dir, u))]);
    expect(`${stdout}${stderr}`).toBe("");
  });

  it("say which hardening settings CRIU rules out", () => {
    const service = readFileSync(join(packageRoot, "deploy", "systemd", "criu-gateway.service"), "utf8");
    for (const setting of ["ProtectSystem=", "NoNewPrivileges=", "SystemCallFilter=", "PrivateTmp="]) {
      // Named in the comment that explains why, and not set.
      expect(service).toMatch(new RegExp(`^#.*\\b${setting}`, "m"));
      expect(service).not.toMatch(new RegExp(`^${setting}`, "m"));
    }
    expect(service).toMatch(/^Type=notify$/m);
    expect(service).toMatch(/^NotifyAccess=main$/m);
    expect(service).toMatch(/^ExecStart=.* serve --listen systemd /m);
  });

  it("keep the socket root's, as the gateway's own default socket is (security claims 1 and 28)", () => {
    const socket = readFileSync(join(packageRoot, "deploy", "systemd", "criu-gateway.socket"), "utf8");
    expect(socket).toMatch(/^ListenStream=\/run\/criu-gateway\/gateway\.sock$/m);
    expect(socket).toMatch(/^SocketMode=0600$/m);
    expect(socket).toMatch(/^SocketUser=root$/m);
    // TCP is left commented out: it needs TLS files the service does not have by default.
    expect(socket).not.toMatch(/^ListenStream=.*:\d+$/m);
  });
});

describe("a socket-activated gateway", () => {
  let receiver: ChildProcess;
  let activated: Activated;
  let activator: ChildProcess;
  let received = "";
  let sock: string;
  let port: number;
  let caPem: Buffer;

  beforeAll(async () => {
    const ca = makeCa(dir, "ca");
    const server = issue(dir, ca, "server", "gateway", ["DNS:localhost", "IP:127.0.0.1"]);
    caPem = pem(ca).cert;
    port = await freePort();
    sock = join(dir, "gw.sock");
    const notify = join(dir, "notify");
    receiver = spawn("/usr/bin/python3", ["-c", NOTIFY_RECEIVER, notify], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    receiver.stdout?.on("data", (chunk: Buffer) => {
      received += chunk.toString();
    });
    await waitFor(() => received.includes("bound"), "the notify receiver to bind");
    activated = activate(
      [
        `--listen=${sock}`,
        `--listen=127.0.0.1:${port}`,
        "--fdname=grpc:grpc-tls",
        `--setenv=NOTIFY_SOCKET=${notify}`,
      ],
      ["systemd", "--tls-cert", server.cert, "--tls-key", server.key, "--images-root", join(dir, "images")],
    );
    activator = activated.child;
    void activated.exited.then((code) => {
      if (code !== 0) process.stderr.write(`socket-activated gateway exited ${code}:\n${activated.log()}\n`);
    });
    await waitFor(() => existsSync(sock), "systemd-socket-activate to listen");
  });

  afterAll(async () => {
    if (activator.exitCode === null) activator.kill("SIGKILL");
    if (receiver.exitCode === null) receiver.kill("SIGKILL");
  });

  it("answers a call on the inherited unix socket, its caller known by its credentials", async () => {
    // The first connection makes systemd-socket-activate start the gateway (exec, same pid).
    const client = new CriuServiceClient(`unix:${sock}`, credentials.createInsecure());
    try {
      const v = await call<VersionResponse>((cb) => client.version({}, cb));
      expect(v.majorNumber).toBeGreaterThanOrEqual(4);
      expect(v.gatewayVersion).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      client.close();
    }
  });

  it("reports READY=1 from its main process, with the sockets it serves", async () => {
    await waitFor(() => received.includes("READY=1"), "READY=1 on NOTIFY_SOCKET");
    expect(received).toContain(`MAINPID=${activator.pid}`);
    expect(received).toContain(`STATUS=serving on unix:${sock}, 127.0.0.1:${port}`);
  });

  it("serves TLS on the inherited TCP socket", async () => {
    const client = new CriuServiceClient(`localhost:${port}`, credentials.createSsl(caPem));
    try {
      // The TLS handshake succeeded (else UNAVAILABLE); without a client certificate the caller
      // is anonymous, and the default policy grants anonymous callers nothing.
      const err: ServiceError = await failure(call((cb) => client.version({}, cb)));
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.details).toMatch(/anonymous/);
    } finally {
      client.close();
    }
  });

  it("keeps the inherited descriptors from CRIU's workers (close-on-exec)", () => {
    for (const fd of [3, 4]) {
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${activator.pid}/fdinfo/${fd}`, "utf8"));
      expect(Number.parseInt(flags?.[1] ?? "0", 8) & 0o2000000, `fd ${fd} is close-on-exec`).not.toBe(0);
    }
  });

  it("reports STOPPING=1 on SIGTERM and exits cleanly", async () => {
    activator.kill("SIGTERM");
    expect(await activated.exited).toBe(0);
    await waitFor(() => received.includes("STOPPING=1"), "STOPPING=1 on NOTIFY_SOCKET");
  });
});

describe("a socket-activated gateway without TLS", () => {
  it("refuses to serve plain TCP on an inherited socket, as on one it binds itself", async () => {
    const port = await freePort();
    const gateway = activate(
      [`--listen=127.0.0.1:${port}`],
      ["systemd", "--images-root", join(dir, "plain-images")],
    );
    await waitFor(() => gateway.log().includes("Listening on"), "systemd-socket-activate to listen");
    // A connection makes it start the gateway, which refuses the socket and exits.
    const knock = connect(port, "127.0.0.1");
    knock.on("error", () => {});
    expect(await gateway.exited).toBe(1);
    knock.destroy();
    expect(gateway.log()).toMatch(
      /refusing plain TCP on the inherited socket .*127\.0\.0\.1:\d+.*--insecure on loopback/,
    );
  });

  it("names the sockets systemd passed when none has the name asked for", async () => {
    const sock = join(dir, "named.sock");
    const gateway = activate(
      [`--listen=${sock}`, "--fdname=grpc"],
      ["systemd:grpc-tls", "--images-root", join(dir, "named-images")],
    );
    await waitFor(() => existsSync(sock), "systemd-socket-activate to listen");
    const knock = connect(sock);
    knock.on("error", () => {});
    expect(await gateway.exited).toBe(1);
    knock.destroy();
    expect(gateway.log()).toContain('systemd passed no socket named "grpc-tls" (passed: grpc)');
  });
});

/** A gateway started by systemd-socket-activate on the sockets of `activation` (its options). */
interface Activated {
  child: ChildProcess;
  /** Everything both wrote on stderr so far. */
  log(): string;
  exited: Promise<number | null>;
}

function activate(activation: string[], serve: string[]): Activated {
  const child = spawn(
    "systemd-socket-activate",
    [
      ...activation,
      process.execPath,
      join(packageRoot, "bin", "criu-gateway.js"),
      "serve",
      "--listen",
      ...serve,
      "--criu",
      criuBin(),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, log: () => log, exited };
}
