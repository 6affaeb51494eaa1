// Two "hosts" on one machine for migration tests: each a pid, network and mount namespace made by
// the test (`unshare`, a bash as its init that reaps what is orphaned there), running its own
// `criu-gateway serve`, the two joined by a veth pair whose ends live only in those namespaces,
// so no packet ever leaves the machine. Tearing down kills each namespace's init, which ends
// everything inside, veth included.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { CriuServiceClient } from "../../gen/criu/gateway/v1/gateway.js";
import { bin, type Run, run } from "./cliGateway.js";
import { waitFor } from "./workload.js";

export interface Host {
  name: string;
  /** The namespace's init (bash), as this test's pid namespace sees it. */
  initPid: number;
  /** The gateway's socket (unix sockets work across network namespaces: they are files). */
  address: string;
  /** This host's address on the veth pair. */
  ip: string;
  client: CriuServiceClient;
  dir: string;
  /** Runs a command inside the host's namespaces. */
  exec(...argv: string[]): Promise<Run>;
  /** Starts a long-running command inside the host's namespaces. */
  spawn(...argv: string[]): ChildProcess;
  /** The pid in this test's namespace of the process that is `nsPid` in the host's. */
  hostPidOf(nsPid: number): number | undefined;
  /** What the gateway logged so far. */
  log(): string;
  /** The gateway's pid, as this test's pid namespace sees it. */
  gatewayPid(): number | undefined;
  /** How many `criu swrk` workers wait for a call now (warm or kept ones). */
  workerCount(): number;
  /** The command lines of the gateway's children (CRIU retitles a worker with what it does). */
  childCommands(): string[];
}

export interface TwoHosts {
  a: Host;
  b: Host;
  dir: string;
  close(): Promise<void>;
}

let serial = 0;

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const pidNs = (pid: number) => readlinkSync(`/proc/${pid}/ns/pid`);

/** Starts a namespace whose init waits forever and reaps whatever it adopts. */
async function startNamespace(): Promise<{ unshare: ChildProcess; initPid: number }> {
  const unshare = spawn(
    "unshare",
    [
      "--pid",
      "--net",
      "--mount",
      "--fork",
      "--mount-proc",
      "--kill-child",
      "bash",
      "-c",
      "sleep infinity & wait",
    ],
    { stdio: "ignore" },
  );
  const pid = unshare.pid;
  if (pid === undefined) throw new Error("cannot run unshare");
  let initPid = 0;
  await waitFor(() => {
    initPid = childrenOf(pid)[0] ?? 0;
    return initPid > 0 && childrenOf(initPid).length > 0;
  }, "the namespace's init");
  return { unshare, initPid };
}

function nsenter(initPid: number, argv: readonly string[]): string[] {
  return ["-t", String(initPid), "--pid", "--net", "--mount", "--", ...argv];
}

async function startHost(
  name: string,
  dir: string,
  extraServeArgs: (host: { socket: string }) => string[],
): Promise<Host & { stop(): Promise<void> }> {
  const { unshare, initPid } = await startNamespace();
  const hostDir = join(dir, name);
  const socket = join(hostDir, "gw.sock");
  let log = "";
  const spawnIn = (...argv: string[]) =>
    spawn("nsenter", nsenter(initPid, argv), { stdio: ["ignore", "ignore", "pipe"] });
  const gateway = spawnIn(
    process.execPath,
    bin,
    "serve",
    "--listen",
    `unix:${socket}`,
    "--images-root",
    join(hostDir, "images"),
    ...extraServeArgs({ socket }),
  );
  gateway.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  await waitFor(
    () => log.includes("gateway listening") || gateway.exitCode !== null,
    `gateway ${name} to listen`,
  );
  if (gateway.exitCode !== null) throw new Error(`gateway ${name} exited at start-up:\n${log}`);
  const ns = pidNs(initPid);
  const host = {
    name,
    initPid,
    address: `unix:${socket}`,
    ip: "",
    client: new CriuServiceClient(`unix:${socket}`, credentials.createInsecure()),
    dir: hostDir,
    exec: (...argv: string[]) => run("nsenter", nsenter(initPid, argv)),
    spawn: (...argv: string[]) => spawn("nsenter", nsenter(initPid, argv), { stdio: "ignore" }),
    hostPidOf(nsPid: number) {
      for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const status = readFileSync(`/proc/${entry}/status`, "utf8");
          const ids = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
          if (ids[ids.length - 1] === nsPid && ids.length > 1 && pidNs(Number(entry)) === ns)
            return Number(entry);
        } catch {
          // gone while we looked
        }
      }
      return undefined;
    },
    log: () => log,
    gatewayPid: () => childrenOf(gateway.pid ?? 0)[0],
    workerCount: () => host.childCommands().filter((argv) => argv.split("\0").includes("swrk")).length,
    childCommands: () => childrenOf(childrenOf(gateway.pid ?? 0)[0] ?? 0).map(commandOf),
    async stop() {
      host.client.close();
      // The gateway first, so that it shuts down cleanly; then the init, which ends the namespace.
      const gatewayPid = childrenOf(gateway.pid ?? 0)[0];
      if (gatewayPid) process.kill(gatewayPid, "SIGTERM");
      // A gateway that does not stop in time is stopped with everything else in its namespace:
      // a failed test must not leave a host (and what runs in it) behind.
      if (gateway.exitCode === null) {
        await Promise.race([
          new Promise((resolve) => gateway.once("exit", resolve)),
          new Promise((resolve) => setTimeout(resolve, 20_000).unref()),
        ]);
      }
      process.kill(initPid, "SIGKILL");
      if (unshare.exitCode === null) await new Promise((resolve) => unshare.once("exit", resolve));
    },
  };
  return host;
}

/**
 * Starts hosts a and b, each gateway allowed to connect to the other (--push-target), and joins
 * them with a veth pair (a 10.231.N.1, b 10.231.N.2 on /24, N per pair).
 */
export async function startTwoHosts(
  options: { extraServeArgs?: (name: "a" | "b", dir: string) => string[] } = {},
): Promise<TwoHosts> {
  const dir = mkdtempSync(join(tmpdir(), "criu-gw-hosts-"));
  const id = `${process.pid % 10_000}${serial++}`;
  const socketOf = (name: string) => join(dir, name, "gw.sock");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(dir, "a"));
  mkdirSync(join(dir, "b"));
  const extra = (name: "a" | "b") => [
    "--push-target",
    `unix:${socketOf(name === "a" ? "b" : "a")}`,
    ...(options.extraServeArgs?.(name, dir) ?? []),
  ];
  const a = await startHost("a", dir, () => extra("a"));
  const b = await startHost("b", dir, () => extra("b")).catch(async (err: unknown) => {
    await a.stop();
    throw err;
  });
  const subnet = 1 + (serial % 250);
  a.ip = `10.231.${subnet}.1`;
  b.ip = `10.231.${subnet}.2`;
  const vethA = `mga${id}`.slice(0, 15);
  const vethB = `mgb${id}`.slice(0, 15);
  const steps: [string, string[]][] = [
    [
      "ip",
      [
        "link",
        "add",
        vethA,
        "netns",
        String(a.initPid),
        "type",
        "veth",
        "peer",
        "name",
        vethB,
        "netns",
        String(b.initPid),
      ],
    ],
  ];
  for (const [host, veth] of [
    [a, vethA],
    [b, vethB],
  ] as const) {
    const inNs = (argv: string[]): [string, string[]] => [
      "nsenter",
      ["-t", String(host.initPid), "--net", "--", ...argv],
    ];
    steps.push(inNs(["ip", "link", "set", "lo", "up"]));
    steps.push(inNs(["ip", "addr", "add", `${host.ip}/24`, "dev", veth]));
    steps.push(inNs(["ip", "link", "set", veth, "up"]));
  }
  for (const [file, args] of steps) {
    const done = await run(file, args);
    if (done.code !== 0) {
      await Promise.all([a.stop(), b.stop()]);
      throw new Error(`${file} ${args.join(" ")}: ${done.stderr}`);
    }
  }
  return {
    a,
    b,
    dir,
    async close() {
      await Promise.all([a.stop(), b.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
