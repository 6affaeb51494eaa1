// The criu-gateway command as the CLI tests run it: `serve` in a child process on a unix socket
// in a temp dir, and client commands in others, each pointed at it with --addr.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/packageRoot.js";
import { waitFor } from "./workload.js";

export const bin = join(packageRoot, "bin", "criu-gateway.js");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; never rejects, the exit status is in `code`. */
export function run(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, [...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export interface CliGateway {
  dir: string;
  socket: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** What the gateway has logged so far. */
  log(): string;
  /** A client command against this gateway (--addr appended). */
  cli(...args: string[]): Promise<Run>;
  /** SIGTERM (unless it has already exited), then removes the temp dir. */
  stop(): Promise<number | null>;
}

/** Starts `criu-gateway serve` with its socket at `socketPath` (relative to a new temp dir). */
export async function startCliGateway(prefix: string, socketPath = "gw.sock"): Promise<CliGateway> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const socket = join(dir, socketPath);
  let log = "";
  const child = spawn(
    "node",
    [bin, "serve", "--listen", `unix:${socket}`, "--images-root", join(dir, "images")],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitFor(() => log.includes("gateway listening") || child.exitCode !== null, "the gateway to listen");
  if (child.exitCode !== null) throw new Error(`the gateway exited at start-up:\n${log}`);
  return {
    dir,
    socket,
    child,
    exited,
    log: () => log,
    cli: (...args) => run("node", [bin, ...args, "--addr", `unix:${socket}`]),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
