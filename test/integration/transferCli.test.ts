// criu-gateway export, import and copy as a person runs them: an export file written through
// a shell redirection, imported later into another gateway, and a copy between gateways.
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Settings } from "node:http2";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STREAM_WINDOW_BYTES } from "../../src/grpc/transferWindows.js";
import { packageRoot } from "../../src/packageRoot.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { plantFiles } from "../support/transfer.js";
import { waitFor } from "../support/workload.js";

const bin = join(packageRoot, "bin", "criu-gateway.js");
let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  b = await startTestGateway();
  a = await startTestGateway({ pushTargets: [b.address] });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

/** Runs the command with standard input and output redirected to files, as `< in > out` does. */
function run(
  args: string[],
  io: { stdin?: string; stdout?: string } = {},
): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const stdin = io.stdin ? openSync(io.stdin, "r") : "ignore";
    const stdout = io.stdout ? openSync(io.stdout, "w") : "pipe";
    const child = spawn("node", [bin, ...args], { stdio: [stdin, stdout, "pipe"] });
    let stderr = "";
    let out = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => {
      if (typeof stdin === "number") closeSync(stdin);
      if (typeof stdout === "number") closeSync(stdout);
      resolve({ code: code ?? 1, stderr, stdout: out });
    });
  });
}

describe("criu-gateway export, import and copy", () => {
  it("exports to a file that imports later, under another id, byte for byte", async () => {
    const files = plantFiles(a.imagesRoot, "saved", { "pages-1.img": 5 * 1024 * 1024 + 3, "core-1.img": 77 });
    const file = join(a.dir, "saved.ckpt");
    const exported = await run(["export", "saved", "--addr", a.address, "--compression", "zstd"], {
      stdout: file,
    });
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(5 * 1024 * 1024);
    const imported = await run(["import", "restored-later", "--addr", b.address], { stdin: file });
    expect(imported.stderr).toBe("");
    expect(imported.stdout).toMatch(/imported checkpoint restored-later/);
    for (const [name, bytes] of Object.entries(files)) {
      expect(readFileSync(join(b.imagesRoot, "restored-later", name)).equals(bytes)).toBe(true);
    }
  });

  it("refuses a file that is cut short, naming the problem, and imports nothing", async () => {
    plantFiles(a.imagesRoot, "cut", { "pages-1.img": 3 * 1024 * 1024 });
    const file = join(a.dir, "cut.ckpt");
    await run(["export", "cut", "--addr", a.address, "--compression", "none"], { stdout: file });
    const { truncateSync } = await import("node:fs");
    truncateSync(file, statSync(file).size - 1000);
    const imported = await run(["import", "--addr", b.address], { stdin: file });
    expect(imported.code).toBe(1);
    expect(imported.stderr).toBe(
      "criu-gateway: the stream ends inside a message: the export file is cut short\n",
    );
    await waitFor(
      () => readdirSync(b.imagesRoot).every((n) => !n.startsWith(".")),
      "the staged import to go",
    );
    expect(() => statSync(join(b.imagesRoot, "cut"))).toThrow();
  });

  it("asks the gateway for windows of several chunks, as a receiving gateway does", async () => {
    // A bare HTTP/2 server in the gateway's place: it reads the command's SETTINGS and hangs up.
    const path = join(a.dir, "settings.sock");
    const server = createServer();
    const settings = new Promise<Settings>((resolve) =>
      server.on("session", (session) =>
        session.once("remoteSettings", (remote) => {
          resolve(remote);
          session.destroy();
        }),
      ),
    );
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const exported = run(["export", "anything", "--addr", `unix:${path}`]);
      expect((await settings).initialWindowSize).toBe(STREAM_WINDOW_BYTES);
      expect((await exported).code).not.toBe(0);
    } finally {
      server.close();
    }
  });

  it("copies a checkpoint from gateway to gateway", async () => {
    const files = plantFiles(a.imagesRoot, "copied", { "pages-1.img": 2 * 1024 * 1024 });
    const copied = await run([
      "copy",
      "copied",
      "--to",
      b.address,
      "--as",
      "copied-there",
      "--addr",
      a.address,
    ]);
    expect(copied.stderr).not.toMatch(/criu-gateway:/);
    expect(copied.code).toBe(0);
    expect(copied.stdout).toMatch(/copied to .* as copied-there/);
    expect(
      readFileSync(join(b.imagesRoot, "copied-there", "pages-1.img")).equals(files["pages-1.img"] as Buffer),
    ).toBe(true);
    const unknown = await run(["copy", "copied", "--to", "unix:/nowhere.sock", "--addr", a.address]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/FAILED_PRECONDITION: this gateway is not configured to push to/);
  });
});
