// The criu-gateway command as a newcomer uses it: `serve` in one process, client commands in
// others, a real process dumped and restored between them; then a graceful SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CriuServiceClient } from "../../gen/criu/gateway/v1/gateway.js";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../../gen/grpc/health/v1/health.js";
import {
  ServerReflectionClient,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection.js";
import { bin, type CliGateway, startCliGateway } from "../support/cliGateway.js";
import { call } from "../support/gateway.js";
import { isAlive, killAndWaitGone, startCounter, waitFor } from "../support/workload.js";

let gateway: CliGateway;
let dir: string;
let socket: string;
let watcher: ChildProcess | undefined;
let watcherExit: Promise<number | null> = Promise.resolve(null);
const cli = (...args: string[]) => gateway.cli(...args);

beforeAll(async () => {
  // The socket's directory does not exist yet: serve makes it.
  gateway = await startCliGateway("criu-gw-cli-", "run/gw.sock");
  ({ dir, socket } = gateway);
});

afterAll(async () => {
  if (watcher && watcher.exitCode === null) watcher.kill("SIGKILL");
  await gateway.stop();
});

describe("criu-gateway command", () => {
  it("creates its unix socket private to root", async () => {
    const { statSync } = await import("node:fs");
    expect(statSync(socket).mode & 0o777).toBe(0o600);
  });

  it("answers version and check", async () => {
    const version = await cli("version");
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^CRIU \d+\.\d+.*criu-gateway \d+\.\d+\.\d+/);
    const check = await cli("check");
    expect(check.stdout).toMatch(/Looks good/);
  });

  it("dumps and restores a process, which goes on counting", async () => {
    const c = await startCounter(dir, "cli-counter");
    const dumped = await cli("dump", "--pid", String(c.pid), "--id", "demo", "--durability", "none");
    expect(dumped.stderr).toBe("");
    expect(dumped.stdout).toMatch(/checkpoint demo written/);
    await c.exited;
    const atDump = c.read();

    const ls = await cli("ls", "--json");
    const listed = JSON.parse(ls.stdout) as { checkpoints: { checkpointId: string; rootPid: number }[] };
    expect(listed.checkpoints).toEqual([
      expect.objectContaining({ checkpointId: "demo", rootPid: c.pid, durability: "DURABILITY_NONE" }),
    ]);
    // The table says it was not flushed, and that CRIU confirmed it.
    expect((await cli("ls")).stdout).toMatch(/\ndemo\s+dump\s.*\scomplete\s+no\n/);

    const restored = await cli("restore", "demo", "--json");
    expect(restored.code).toBe(0);
    const pid = (JSON.parse(restored.stdout) as { pid: number }).pid;
    try {
      expect(pid).toBe(c.pid);
      await waitFor(() => c.read() > atDump + 3, "the restored counter to count on");
      expect(isAlive(pid)).toBe(true);
    } finally {
      await killAndWaitGone(pid);
    }
    expect((await cli("rm", "demo")).stdout).toMatch(/deleted/);
    expect((await cli("ls")).stdout).toMatch(/no checkpoints/);
  });

  it("starts, lists and stops a page server", async () => {
    const started = await cli("page-server", "start", "ps-demo", "--address", "127.0.0.1");
    expect(started.stderr).toBe("");
    expect(started.stdout).toMatch(
      /^page server for checkpoint ps-demo listening on 127\.0\.0\.1:\d+ \(pid \d+\)/,
    );
    const listed = await cli("page-server", "ls");
    expect(listed.stdout).toMatch(/^ps-demo\tpid \d+\t127\.0\.0\.1:\d+$/m);
    const stopped = await cli("page-server", "stop", "ps-demo");
    expect(stopped.stdout).toMatch(/stopped/);
    expect((await cli("page-server", "ls")).stdout).toMatch(/no page servers/);
    const bad = await cli("page-server", "start", "ps-bad", "--port", "70000");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/port must be 0 to 65535/);
  });

  it("prints errors a person can act on, with exit status 1", async () => {
    const missing = await cli("restore", "nope");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/checkpoint nope does not exist/);
    const bad = await cli("dump", "--pid", "1", "--id", "../x");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a valid checkpoint id/);
    const usage = await cli("dump", "--id", "x");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/dump needs --pid N/);
  });

  it("serves health and reflection", async () => {
    const address = `unix:${socket}`;
    const health = new HealthClient(address, credentials.createInsecure());
    const reflection = new ServerReflectionClient(address, credentials.createInsecure());
    try {
      const status = await call<{ status: HealthCheckResponse_ServingStatus }>((cb) =>
        health.check({ service: "criu.gateway.v1.CriuService" }, cb),
      );
      expect(status.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const services = await new Promise<string[]>((resolve, reject) => {
        const stream = reflection.serverReflectionInfo();
        stream.on("data", (res: ServerReflectionResponse) => {
          resolve(res.listServicesResponse?.service.map((s) => s.name) ?? []);
          stream.end();
        });
        stream.on("error", reject);
        stream.write({ host: "", listServices: "" });
      });
      expect(services).toEqual(
        expect.arrayContaining([
          "criu.gateway.v1.CriuService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]),
      );
    } finally {
      health.close();
      reflection.close();
    }
  });

  it("watch follows operations live, and ends when the gateway stops", async () => {
    watcher = spawn("node", [bin, "watch", "--json", "--addr", `unix:${socket}`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    watcherExit = new Promise((resolve) => watcher?.once("exit", (code) => resolve(code)));
    let out = "";
    watcher.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const lines = () =>
      out
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map(
          (l) => JSON.parse(l) as { operationId: string; started?: unknown; finished?: { code?: number } },
        );
    // The watcher is subscribed once an operation shows up in its output: probe with VERSIONs,
    // one at a time.
    const probe = new CriuServiceClient(`unix:${socket}`, credentials.createInsecure());
    let probing = false;
    try {
      await waitFor(() => {
        if (lines().some((e) => e.finished)) return true;
        if (!probing) {
          probing = true;
          probe.version({}, () => {
            probing = false;
          });
        }
        return false;
      }, "the watcher to see an operation");
    } finally {
      probe.close();
    }
    const c = await startCounter(dir, "watched");
    const dumped = await cli("dump", "--pid", String(c.pid), "--id", "watched", "--leave-running");
    expect(dumped.code).toBe(0);
    c.child.kill("SIGKILL");
    await c.exited;
    await waitFor(
      () =>
        lines().some((e) => (e.started as { checkpointId?: string } | undefined)?.checkpointId === "watched"),
      "the dump's started event",
    );
    const id = lines().find(
      (e) => (e.started as { checkpointId?: string } | undefined)?.checkpointId === "watched",
    )?.operationId;
    await waitFor(
      // proto3 JSON leaves out a field at its default: no `code` in `finished` is status 0, OK.
      () =>
        lines().some((e) => e.operationId === id && e.finished !== undefined && (e.finished.code ?? 0) === 0),
      "the dump's finished event",
    );
  });

  it("shuts down on SIGTERM, removing its socket and ending watchers", async () => {
    gateway.child.kill("SIGTERM");
    expect(await gateway.exited).toBe(0);
    expect(await watcherExit).toBe(0);
    expect(gateway.log()).toMatch(/gateway stopped/);
    expect(existsSync(socket)).toBe(false);
  });
});
