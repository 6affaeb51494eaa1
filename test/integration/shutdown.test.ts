// Shutdown of the real gateway process with work in flight (issue #11): a second SIGTERM, or a
// SIGINT after it, must not end the process before that work is done. Node ends a process on
// such a signal when nothing listens for it, which here would kill the gateway mid-publish.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CriuOptions, CriuServiceClient, type SessionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { packageRoot } from "../../src/packageRoot.js";
import { type Counter, startCounter, waitFor } from "../support/workload.js";

const bin = join(packageRoot, "bin", "criu-gateway.js");
let dir: string;
let server: ChildProcess;
let serverExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let serverLog = "";
let counter: Counter | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "criu-gw-shutdown-"));
  server = spawn(
    "node",
    [bin, "serve", "--listen", `unix:${join(dir, "gw.sock")}`, "--images-root", join(dir, "images")],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  server.stderr?.on("data", (chunk: Buffer) => {
    serverLog += chunk.toString();
  });
  serverExit = new Promise((resolve) => server.once("exit", (code, signal) => resolve({ code, signal })));
  await waitFor(() => serverLog.includes("gateway listening"), "the gateway to listen");
});

afterAll(async () => {
  counter?.kill();
  if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  await serverExit;
  rmSync(dir, { recursive: true, force: true });
});

describe("shutdown with a dump in flight", () => {
  it("repeated SIGTERM and SIGINT wait for the dump, which is published; then the gateway exits 0", async () => {
    const c = await startCounter(dir, "in-flight");
    counter = c;
    const client = new CriuServiceClient(`unix:${join(dir, "gw.sock")}`, credentials.createInsecure());
    const outcome = new Promise<{ result?: SessionResponse; error?: Error }>((resolve) => {
      const session = client.session();
      session.on("data", (res: SessionResponse) => {
        if (res.dumpResult) resolve({ result: res });
        const callback = res.callback;
        if (!callback) return;
        const answer = () =>
          session.write({ notifyReply: { sequence: callback.sequence, success: true, external: [] } });
        if (callback.script !== "post-dump") {
          answer();
          return;
        }
        // The tree is frozen and its images written: the point a signal must not cut short.
        server.kill("SIGTERM");
        void waitFor(
          () => serverLog.includes('"signal":"SIGTERM"'),
          "the first SIGTERM to start the shutdown",
        )
          .then(() => {
            server.kill("SIGTERM");
            server.kill("SIGINT");
            return waitFor(
              () => serverLog.split("already shutting down").length > 2,
              "the gateway to note both further signals",
            );
          })
          .then(answer, (error: Error) => resolve({ error }));
      });
      session.on("error", (error: Error) => resolve({ error }));
      session.write({
        start: {
          dump: {
            checkpointId: "in-flight",
            parentCheckpointId: "",
            options: CriuOptions.fromPartial({ pid: c.pid, notifyScripts: true }),
          },
          callbackTimeoutMs: 60_000,
        },
      });
    });
    const { result, error } = await outcome;
    client.close();
    expect(error).toBeUndefined();
    expect(result?.dumpResult?.checkpoint?.checkpointId).toBe("in-flight");
    expect(await serverExit).toEqual({ code: 0, signal: null });
    expect(serverLog).toMatch(/gateway stopped/);
    expect(existsSync(join(dir, "images", "in-flight", "inventory.img"))).toBe(true);
    await c.exited;
  });
});
