// A tree in its own pid, mount, uts, ipc and network namespaces (made with unshare), dumped and
// restored on a Session, so CRIU's namespace and network callbacks (network-lock, network-unlock,
// setup-namespaces, post-setup-namespaces) reach the caller, who can see and veto them.
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { CriuOptions, type NotifyCallback } from "../../../gen/criu/gateway/v1/gateway.js";
import { errorDetailOf } from "../../../src/grpc/errorStatus.js";
import { failure, restoreWith } from "../../support/gateway.js";
import {
  descendants,
  ENDINGS,
  PYTHON,
  requireProgram,
  type Workload,
  workloadSuite,
} from "../../support/programs.js";
import { type Answer, runSession } from "../../support/session.js";
import { waitFor } from "../../support/workload.js";

// The namespaces' first process (pid 1 in its pid namespace) makes itself a root of two mounts,
// the host's root filesystem bound without its submounts and a /proc of its own, plus a /dev
// holding only null: every mount of the tree is then one CRIU can dump and re-create (the host's
// other mounts are not in it). It brings up the loopback, names its host, sets an ipc sysctl, and
// becomes the workload, in a session of its own (its session leader, unshare, is outside the tree).
const NS_INIT = `
set -e
root=$1 log=$2
mount --make-rprivate /
mount --bind / "$root"
mount -t proc proc "$root/proc"
cd "$root"
pivot_root . .
umount -l .
cd /
mount -t tmpfs -o size=64k,mode=755 dev /dev
mknod -m 666 /dev/null c 1 3
exec </dev/null >>"$log" 2>&1
ip link set lo up
hostname criu-ns-test
echo 54321 >/proc/sys/kernel/msgmax
shift 2
exec /usr/bin/setsid "$@"
`;

// Reports, in place and fixed-width: a count, its pid, its host name, its ipc namespace's msgmax,
// how many round trips a TCP connection on its own loopback has made, and its network namespace
// (which tells a restored copy from its original when both run).
const NS_WORKLOAD = `
import os, socket, sys, time
status = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
server = socket.create_server(("127.0.0.1", 7000))
client = socket.create_connection(("127.0.0.1", 7000))
conn, _ = server.accept()
n = trips = 0
while True:
    n += 1
    client.send(b"x")
    conn.send(conn.recv(1))
    trips += len(client.recv(1))
    msgmax = open("/proc/sys/kernel/msgmax").read().strip()
    net = os.readlink("/proc/self/ns/net")
    line = f"{n} {os.getpid()} {os.uname().nodename} {msgmax} {trips} {net}"
    os.pwrite(status, line.ljust(79).encode() + b"\\n", 0)
    time.sleep(0.01)
`;

const NAMESPACES = ["pid", "mnt", "uts", "ipc", "net"];

const suite = workloadSuite({ config: { callbackTimeoutMs: 30_000 }, waitForWorkers: true });
const { workloads } = suite;

interface NsStatus {
  count: number;
  pid: number;
  hostname: string;
  msgmax: string;
  trips: number;
  net: string;
}

function readNsStatus(file: string): NsStatus {
  const [count, pid, hostname, msgmax, trips, net] = readFileSync(file, "utf8").trim().split(" ");
  return {
    count: Number(count),
    pid: Number(pid),
    hostname: hostname ?? "",
    msgmax: msgmax ?? "",
    trips: Number(trips),
    net: net ?? "",
  };
}

/** The namespaces (inode links) of a process, for those in NAMESPACES. */
function namespacesOf(pid: number | "self"): Record<string, string> {
  return Object.fromEntries(NAMESPACES.map((ns) => [ns, readlinkSync(`/proc/${pid}/ns/${ns}`)]));
}

/** Starts the workload under unshare; resolves with it, the namespaces' first process and its status file. */
async function namespaced(name: string): Promise<{ w: Workload; root: number; file: string }> {
  const unshare = requireProgram("/usr/bin/unshare", "util-linux");
  requireProgram("/usr/sbin/ip", "iproute2");
  const rootfs = join(suite.gw.dir, `${name}-root`);
  mkdirSync(rootfs);
  const file = join(suite.gw.dir, `${name}.status`);
  const w = await workloads.start(suite.gw.dir, name, [
    unshare,
    "--pid",
    "--fork",
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "/bin/sh",
    "-c",
    NS_INIT,
    "ns-init",
    rootfs,
    join(suite.gw.dir, `${name}.log`),
    PYTHON,
    "-c",
    NS_WORKLOAD,
    file,
  ]);
  await waitFor(() => readNsStatus(file).trips > 3, `${name} to run in its namespaces`);
  const [root] = descendants(w.pid);
  if (root === undefined) throw new Error(`${name}: unshare has no child`);
  return { w, root, file };
}

/** Waits for the copy in network namespace `net` to make more loopback round trips (two reports of its own). */
async function runsOn(file: string, net: string, what: string): Promise<void> {
  let first = -1;
  await waitFor(() => {
    const now = readNsStatus(file);
    if (now.net !== net) return false;
    if (first < 0) first = now.trips;
    return now.trips > first + 3;
  }, what);
}

function dumpStart(id: string, pid: number, leaveRunning: boolean) {
  return {
    dump: {
      checkpointId: id,
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ pid, leaveRunning, tcpEstablished: true, notifyScripts: true }),
    },
    callbackTimeoutMs: 0,
  };
}

function restoreStart(id: string) {
  // root "/": the namespaces' root mount is the host's root filesystem, bound again.
  return {
    restore: {
      checkpointId: id,
      options: CriuOptions.fromPartial({ root: "/", tcpEstablished: true, notifyScripts: true }),
    },
    callbackTimeoutMs: 0,
  };
}

describe.each(ENDINGS)("a tree in its own namespaces, dumped and %s on a Session", (ending) => {
  it("delivers the network and namespace callbacks, and comes back with its namespaces' state", async () => {
    const { w, root, file } = await namespaced(`ns-${ending}`);
    const before = readNsStatus(file);
    expect(before).toMatchObject({ pid: 1, hostname: "criu-ns-test", msgmax: "54321" });
    expect(namespacesOf(root)).not.toMatchObject(namespacesOf("self"));

    const dumped = await runSession(
      suite.gw.client,
      dumpStart(`ns-${ending}`, root, ending === "leave_running"),
    );
    expect(dumped.error).toBeUndefined();
    // The network is unlocked after a dump only when the tree runs on.
    expect(dumped.callbacks.map((cb) => cb.script)).toEqual([
      "pre-dump",
      "network-lock",
      "query-ext-files",
      "post-dump",
      ...(ending === "leave_running" ? ["network-unlock"] : []),
    ]);
    // Left running, the original keeps its pid and port: in namespaces of its own, a restored copy
    // collides with neither, so it is restored beside the original.
    if (ending === "leave_running")
      await runsOn(file, before.net, "the original to run on, its loopback unlocked");
    else await w.gone;

    // At setup-namespaces CRIU names the restored root, whose namespaces the caller can inspect.
    const seen: Record<string, Record<string, string>> = {};
    const restored = await runSession(
      suite.gw.client,
      restoreStart(`ns-${ending}`),
      (cb: NotifyCallback): Answer => {
        if (cb.pid !== undefined && cb.pid > 0) seen[cb.script] = namespacesOf(cb.pid);
        return { success: true };
      },
    );
    expect(restored.error).toBeUndefined();
    const pid = workloads.restored(restored.result?.restoreResult?.pid ?? 0);
    expect(restored.callbacks.map((cb) => cb.script)).toEqual([
      "pre-restore",
      "setup-namespaces",
      "post-setup-namespaces",
      "post-restore",
      "network-unlock",
      "pre-resume",
      "post-resume",
    ]);
    expect(restored.callbacks.find((cb) => cb.script === "setup-namespaces")?.pid).toBe(pid);
    // Its pid, uts, ipc and network namespaces are already the restored tree's; CRIU builds its
    // mount namespace afterwards.
    const { mnt: _building, ...settled } = namespacesOf(pid);
    expect(seen["setup-namespaces"]).toMatchObject(settled);
    expect(seen["setup-namespaces"]?.mnt).not.toBe(namespacesOf(pid).mnt);
    expect(namespacesOf(pid)).not.toMatchObject(namespacesOf("self"));
    expect(runningWith(file)).toContain(pid);

    // Its own pid 1 again, with the host name and ipc setting of its namespaces, its loopback
    // connection carrying on.
    const net = namespacesOf(pid).net;
    await runsOn(file, net, "the restored tree to run on");
    expect(readNsStatus(file)).toMatchObject({ pid: 1, hostname: "criu-ns-test", msgmax: "54321", net });
    if (ending === "leave_running") await runsOn(file, before.net, "the original to run on beside its copy");
  });
});

describe("callbacks of a namespaced tree, vetoed", () => {
  it("a failure answered at network-lock fails the dump: CRIU unlocks the network, the tree runs on", async () => {
    const { root, file } = await namespaced("ns-veto-lock");
    const out = await runSession(suite.gw.client, dumpStart("ns-veto-lock", root, false), (cb) => ({
      success: cb.script !== "network-lock",
    }));
    expect(out.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(out.callbacks.map((cb) => cb.script)).toEqual(["pre-dump", "network-lock", "network-unlock"]);
    await runsOn(file, namespacesOf(root).net, "the tree to run on after the veto");
  });

  it("a failure answered at setup-namespaces fails the restore and leaves nothing running", async () => {
    const { w, root } = await namespaced("ns-veto-setup");
    const dumped = await runSession(suite.gw.client, dumpStart("ns-veto-setup", root, false));
    expect(dumped.error).toBeUndefined();
    await w.gone;
    let restoredRoot = 0;
    const out = await runSession(suite.gw.client, restoreStart("ns-veto-setup"), (cb) => {
      if (cb.script === "setup-namespaces") restoredRoot = cb.pid ?? 0;
      return { success: cb.script !== "setup-namespaces" };
    });
    expect(out.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(out.callbacks.map((cb) => cb.script)).toEqual(["pre-restore", "setup-namespaces"]);
    expect(restoredRoot).toBeGreaterThan(0);
    // CRIU killed the half-restored tree; wait until it has been reaped.
    await waitFor(() => !isPresent(restoredRoot), "the half-restored tree to be gone");
  });
});

describe("a restore of a mount namespace", () => {
  it("needs root: without it CRIU's restorer hits a BUG and dies, and nothing is left running", async () => {
    const { w, root, file } = await namespaced("ns-no-root");
    const dumped = await runSession(suite.gw.client, dumpStart("ns-no-root", root, false));
    expect(dumped.error).toBeUndefined();
    await w.gone;
    const err = await failure(restoreWith(suite.gw.client, "ns-no-root", { tcpEstablished: true }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    const log = errorDetailOf(err)?.logTail.join("\n") ?? "";
    expect(log).toContain("mnt: BUG at criu/mount.c:48");
    expect(log).toMatch(/killed by signal 11/);
    await waitFor(() => runningWith(file).length === 0, "every half-restored process to be gone");
  });
});

/** Processes whose command line names `arg` (the workload's status file names it). */
function runningWith(arg: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(arg);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function isPresent(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}
