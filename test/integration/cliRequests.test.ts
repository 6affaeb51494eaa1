// The criu-gateway command's pre-dump, log and cpuinfo commands against a real `serve` and real CRIU.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/packageRoot.js";
import { startCounter, waitFor } from "../support/workload.js";

const bin = join(packageRoot, "bin", "criu-gateway.js");
let dir: string;
let socket: string;
let server: ChildProcess;
let serverExit: Promise<number | null>;
let serverLog = "";

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("node", [bin, ...args, "--addr", `unix:${socket}`], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-cli2-"));
  socket = join(dir, "gw.sock");
  server = spawn("node", [bin, "serve", "--listen", `unix:${socket}`, "--images-root", join(dir, "images")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  server.stderr?.on("data", (chunk: Buffer) => {
    serverLog += chunk.toString();
  });
  serverExit = new Promise((resolve) => server.once("exit", (code) => resolve(code)));
  await waitFor(() => serverLog.includes("gateway listening"), "the gateway to listen");
});

afterAll(async () => {
  if (server.exitCode === null) server.kill("SIGTERM");
  await serverExit;
  rmSync(dir, { recursive: true, force: true });
});

describe("criu-gateway pre-dump, log and cpuinfo commands", () => {
  it("records and checks the CPU, lists the checkpoint's kind, and prints its log", async () => {
    const dumped = await cli("cpuinfo-dump", "cpu", "--log-level", "4");
    expect(dumped.stderr).toBe("");
    expect(dumped.stdout).toMatch(/CPU description written as checkpoint cpu/);
    const checked = await cli("cpuinfo-check", "cpu");
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/can run what checkpoint cpu describes/);
    const ls = await cli("ls");
    expect(ls.stdout).toMatch(/^ID\s+KIND\s+CREATED/);
    expect(ls.stdout).toMatch(/\ncpu\s+cpuinfo\s/);
    const log = await cli("log", "cpu");
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(/cpu: /);
    const checkLog = await cli("log", "cpu", "--kind", "cpuinfo-check");
    expect(checkLog.code).toBe(0);
    const noLog = await cli("log", "cpu", "--kind", "restore");
    expect(noLog.code).toBe(1);
    expect(noLog.stderr).toMatch(/has no restore\.log/);
    const badKind = await cli("log", "cpu", "--kind", "nonsense");
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toMatch(/--kind nonsense/);
  });

  it("pre-dumps, or says why this host cannot", async () => {
    const c = await startCounter(dir, "cli-pre");
    try {
      const features = JSON.parse((await cli("features", "--json")).stdout) as { memTrack: boolean };
      const pre = await cli("pre-dump", "--pid", String(c.pid), "--id", "pre");
      if (features.memTrack) {
        expect(pre.stdout).toMatch(/pre-dump pre written/);
      } else {
        expect(pre.code).toBe(1);
        expect(pre.stderr).toMatch(/pre-dump needs dirty-memory tracking/);
      }
      const now = c.read();
      await waitFor(() => c.read() > now, "the counter to keep counting");
      const usage = await cli("pre-dump", "--id", "x");
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/pre-dump needs --pid N/);
    } finally {
      c.child.kill("SIGKILL");
      await c.exited;
    }
  });
});
