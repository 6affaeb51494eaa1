// Evidence that CRIU receives the CriuOptions a remote caller sets: real gRPC, a real gateway, real
// CRIU and real processes. Each case shows the option's effect (a dump CRIU refuses without it and
// accepts with it, a process left running or stopped, files on disk) or, where the effect cannot be
// seen on this host, what CRIU wrote about it in its log or why it rejected the request.
// docs/api-compliance.md says, per option, which of these it is and why.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointLogKind,
  CriuCgMode,
  CriuNetworkLockMethod,
  type CriuOptions,
  CriuPreDumpMode,
  type DumpResponse,
  type GetCheckpointLogResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { errorDetailOf } from "../../src/grpc/errorStatus.js";
import {
  call,
  dumpWith,
  failure,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { type Counter, isAlive, killAndWaitGone, waitFor } from "../support/workload.js";

let gw: TestGateway;
const processes = new TestProcesses();
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  gw = await startTestGateway();
});

afterAll(async () => {
  await gw.close();
});

afterEach(async () => {
  await processes.stopAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await expectNothingLeft(gw);
});

/** A counting workload, child of this process, that first runs `setup` (Python, top level). */
function workload(name: string, setup = "", session: "own" | "outside" = "own"): Promise<Counter> {
  return processes.counter(gw.dir, name, { setup, session });
}

function dump(checkpointId: string, options: Partial<CriuOptions>, parent = ""): Promise<DumpResponse> {
  return dumpWith(gw.client, checkpointId, options, parent);
}

async function restore(checkpointId: string, options: Partial<CriuOptions> = {}): Promise<number> {
  const res = await restoreWith(gw.client, checkpointId, options).catch((err: ServiceError) => {
    // A restore that fails where it should not says why in the test's output.
    err.message += `\n${errorDetailOf(err)?.logTail.join("\n") ?? ""}`;
    throw err;
  });
  processes.restored(res.pid);
  return res.pid;
}

async function log(checkpointId: string, kind = CheckpointLogKind.CHECKPOINT_LOG_KIND_DUMP): Promise<string> {
  const res = await call<GetCheckpointLogResponse>((cb) =>
    gw.client.getCheckpointLog({ checkpointId, kind }, cb),
  );
  return res.text;
}

/** A call CRIU refused: its gRPC code and CRIU's log tail from the error details. */
async function refusal(promise: Promise<unknown>): Promise<{ err: ServiceError; tail: string }> {
  const err = await failure(promise);
  return { err, tail: errorDetailOf(err)?.logTail.join("\n") ?? "" };
}

/** The dump is refused with `message` in CRIU's log, nothing is published, the workload runs on. */
async function expectDumpRefused(
  id: string,
  c: Counter,
  options: Partial<CriuOptions>,
  message: RegExp,
): Promise<void> {
  const { err, tail } = await refusal(dump(id, { pid: c.pid, ...options }));
  expect(err.code, err.details).toBe(status.FAILED_PRECONDITION);
  expect(tail).toMatch(message);
  expect(existsSync(join(gw.imagesRoot, id))).toBe(false);
  const now = c.read();
  await waitFor(() => c.read() > now, `the refused workload ${id} to count on`);
}

/** The dump succeeds and the workload is gone (no leave_running). */
async function expectDumped(id: string, c: Counter, options: Partial<CriuOptions>): Promise<DumpResponse> {
  const res = await dump(id, { pid: c.pid, ...options });
  await c.exited;
  expect(res.checkpoint?.checkpointId).toBe(id);
  return res;
}

function stateOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2)[0]!;
}

describe("options CRIU acts on, shown by their effect", () => {
  it("pid: names the tree CRIU dumps", async () => {
    const c = await workload("pid");
    const res = await expectDumped("pid", c, {});
    expect(res.checkpoint?.rootPid).toBe(c.pid);
    expect(isAlive(c.pid)).toBe(false);
  });

  it("leave_running: the tree runs on after the dump; without it the tree is killed", async () => {
    const c = await workload("leave-running");
    await dump("leave-running", { pid: c.pid, leaveRunning: true });
    const now = c.read();
    await waitFor(() => c.read() > now + 2, "the dumped counter to count on");
    expect(isAlive(c.pid)).toBe(true);
  });

  it("leave_stopped: the tree is left stopped after the dump", async () => {
    const c = await workload("leave-stopped");
    await dump("leave-stopped", { pid: c.pid, leaveStopped: true });
    expect(stateOf(c.pid)).toBe("T");
    const frozen = c.read();
    c.child.kill("SIGCONT");
    await waitFor(() => c.read() > frozen, "the stopped counter to count on after SIGCONT");
  });

  it("shell_job: a tree whose session leader is outside it dumps only with shell_job", async () => {
    const c = await workload("shell-job", "", "outside");
    await expectDumpRefused("shell-job-no", c, {}, /is not a session leader\. Consider using --shell-job/);
    await expectDumped("shell-job", c, { shellJob: true });
  });

  it("log_level: 4 writes CRIU's debug lines, 1 only errors", async () => {
    const a = await workload("log-4");
    await dump("log-4", { pid: a.pid, leaveRunning: true, logLevel: 4 });
    const b = await workload("log-1");
    await dump("log-1", { pid: b.pid, leaveRunning: true, logLevel: 1 });
    const verbose = await log("log-4");
    const quiet = await log("log-1");
    expect(verbose).toMatch(/\(\d+\.\d+\)/); // level 4 stamps every line with the time
    expect(verbose).toMatch(/Dumping finished successfully/);
    expect(quiet).not.toMatch(/Dumping finished successfully/);
    expect(quiet.length).toBeLessThan(verbose.length / 10);
  });

  it("log_to_stderr: CRIU writes no log file, so the checkpoint has no dump log", async () => {
    const c = await workload("log-stderr");
    await dump("log-stderr", { pid: c.pid, leaveRunning: true, logToStderr: true });
    expect(existsSync(join(gw.imagesRoot, "log-stderr", "dump.log"))).toBe(false);
    const err = await failure(log("log-stderr"));
    expect(err.code).toBe(status.NOT_FOUND);
  });

  // The connection's peer is this test process, which is not dumped: what CRIU documents
  // tcp_established and tcp_close for. The workload echoes what the peer sends, on a thread.
  it("tcp_established: a connection to a peer outside the tree is dumped, restored, and still carries data", async () => {
    const peer = await tcpPeer();
    const c = await workload("tcp", echoClient(peer.port));
    const sk = await peer.accepted;
    expect(await roundTrip(sk, "before")).toBe("before");
    await expectDumpRefused("tcp-no", c, {}, /Connected TCP socket, consider using --tcp-established/);
    await expectDumped("tcp", c, { tcpEstablished: true });
    expect(isAlive(await restore("tcp", { tcpEstablished: true }))).toBe(true);
    // The same socket of the peer: the connection itself was restored, sequence numbers and all.
    expect(await roundTrip(sk, "after the restore")).toBe("after the restore");
  });

  it("tcp_close: the connection is not kept; the restore needs it too and gives the process a closed socket", async () => {
    const peer = await tcpPeer();
    const c = await workload("tcp-close", echoClient(peer.port));
    const sk = await peer.accepted;
    const ended = new Promise<void>((resolve) => sk.once("close", () => resolve()));
    await expectDumpRefused("tcp-close-no", c, {}, /consider using --tcp-established/);
    await expectDumped("tcp-close", c, { tcpClose: true });
    // Not blocked nor dumped: the connection ended with the dumped process.
    await ended;
    const { err, tail } = await refusal(restore("tcp-close"));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(tail).toMatch(/Need to set the --tcp-close options/);
    expect(isAlive(await restore("tcp-close", { tcpClose: true }))).toBe(true);
    // CRIU shuts the restored socket down: the echo thread reads the end of the stream.
    await waitFor(() => existsSync(`${c.file}.closed`), "the restored process to read its socket's end");
  });

  it("tcp_skip_in_flight: a connection not yet accepted is left out; the restored listener accepts new ones", async () => {
    const c = await workload("in-flight", LISTENER);
    const port = Number(readFileSync(`${c.file}.port`, "utf8"));
    const inFlight = await connectTcp(port);
    // CRIU leaves the client to notice: it may see a reset.
    inFlight.on("error", () => {});
    cleanups.push(() => void inFlight.destroy());
    await expectDumpRefused("in-flight-no", c, {}, /In-flight connection \(l\)/);
    await expectDumped("in-flight", c, { tcpSkipInFlight: true, logLevel: 4 });
    expect(await log("in-flight")).toMatch(/Skipping in-flight connection \(l\)/);
    expect(isAlive(await restore("in-flight"))).toBe(true);
    const again = await connectTcp(port);
    cleanups.push(() => void again.destroy());
    expect(again.remotePort).toBe(port);
  });

  it("ext_unix_sk: a datagram socket connected to a peer outside the tree dumps only with it", async () => {
    const peerPath = join(gw.dir, "ext-peer.sock");
    await workload(
      "ext-peer",
      `import socket\nsk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nsk.bind(${JSON.stringify(peerPath)})\n`,
    );
    const c = await workload(
      "ext-unix",
      `import socket\nsk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nsk.connect(${JSON.stringify(peerPath)})\n`,
    );
    await expectDumpRefused("ext-unix-no", c, {}, /External socket is used\. Consider using --ext-unix-sk/);
    await expectDumped("ext-unix", c, { extUnixSk: true });
  });

  it("unix_sk_ino: a stream socket to an outside peer dumps once its inode is declared external", async () => {
    const { path: serverPath, server } = await unixServer("ino-server.sock");
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const c = await workload(
      "unix-ino",
      `import socket\nsk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\nsk.connect(${JSON.stringify(serverPath)})\nopen(path + ".ino", "w").write(str(os.fstat(sk.fileno()).st_ino))\n`,
    );
    const inode = Number(readFileSync(`${c.file}.ino`, "utf8"));
    // ext_unix_sk alone does not cover a stream socket: CRIU says so.
    await expectDumpRefused(
      "unix-ino-no",
      c,
      { extUnixSk: true },
      /Can't dump half of stream unix connection/,
    );
    await expectDumped("unix-ino", c, { extUnixSk: true, unixSkIno: [{ inode }] });
  });

  it("file_locks: a process holding a flock dumps only with file_locks", async () => {
    const c = await workload(
      "flock",
      `import fcntl\nlocked = open(path + ".lock", "w")\nfcntl.flock(locked, fcntl.LOCK_EX)\n`,
    );
    await expectDumpRefused("flock-no", c, {}, /file locks are hold by dumping tasks/);
    await expectDumped("flock", c, { fileLocks: true });
  });

  it("ghost_limit: an open unlinked 2 MiB file is refused by default, dumped with a 4 MiB limit", async () => {
    const c = await workload(
      "ghost",
      `ghost = open(path + ".ghost", "w+b")\nghost.write(os.urandom(2 << 20))\nghost.flush()\nos.fsync(ghost.fileno())\nos.unlink(path + ".ghost")\n`,
    );
    await expectDumpRefused("ghost-no", c, {}, /Can't dump ghost file .* size, increase limit/);
    await expectDumpRefused("ghost-small", c, { ghostLimit: 1 << 20 }, /increase limit/);
    const res = await expectDumped("ghost", c, { ghostLimit: 4 << 20 });
    expect(res.checkpoint?.sizeBytes).toBeGreaterThan(2 << 20);
  });

  it("link_remap: a file open by a name since removed (another link remains) dumps only with it", async () => {
    const c = await workload(
      "link-remap",
      `open(path + ".a", "w").write("x")\nos.link(path + ".a", path + ".b")\nheld = open(path + ".a")\nos.unlink(path + ".a")\n`,
    );
    await expectDumpRefused("link-remap-no", c, {}, /Can't create link remap .* Use link-remap option/);
    await expectDumped("link-remap", c, { linkRemap: true });
    // CRIU made the temporary link it restores the file through, next to the removed name.
    expect(readdirSync(gw.dir).some((n) => n.startsWith("link_remap."))).toBe(true);
  });

  it("skip_file_rwx_check: a file whose mode changed after the dump restores only with it", async () => {
    const c = await workload("rwx", `held = open(path + ".rw", "a+")\n`);
    await expectDumped("rwx", c, {});
    chmodSync(`${c.file}.rw`, 0o600);
    const { tail } = await refusal(restore("rwx"));
    expect(tail).toMatch(/has bad mode 0100600 \(expect 0100644\)/);
    // The failed restore's process is reaped by init, not by us: wait until its pid is free.
    await waitFor(() => !existsSync(`/proc/${c.pid}`), "the failed restore's pid to be free");
    expect(isAlive(await restore("rwx", { skipFileRwxCheck: true }))).toBe(true);
  });

  // Deduplication on a dump needs a parent made with track_mem, which this host cannot do (no
  // dirty-memory tracking); on a restore, CRIU punches each page out of the images once restored.
  it("auto_dedup: a restore with it punches the restored pages out of the checkpoint's images", async () => {
    const c = await workload("dedup");
    await expectDumped("dedup", c, {});
    const before = pageBlocks("dedup");
    await killAndWaitGone(await restore("dedup"));
    expect(pageBlocks("dedup")).toBe(before);
    await restore("dedup", { autoDedup: true });
    expect(pageBlocks("dedup")).toBeLessThan(before / 2);
  });

  it("cpu_cap: makes the dump record the CPU (cpuinfo.img), which it does not by default", async () => {
    const c = await workload("cpu-cap");
    await dump("cpu-cap-no", { pid: c.pid, leaveRunning: true });
    await dump("cpu-cap", { pid: c.pid, leaveRunning: true, cpuCap: 1 });
    expect(existsSync(join(gw.imagesRoot, "cpu-cap-no", "cpuinfo.img"))).toBe(false);
    expect(existsSync(join(gw.imagesRoot, "cpu-cap", "cpuinfo.img"))).toBe(true);
  });

  it("freeze_cgroup and timeout: CRIU freezes through the cgroup, for at most that many seconds", async () => {
    const c = await workload("freezer");
    const cgroup = join("/sys/fs/cgroup/freezer", `criu-gw-test-${process.pid}`);
    mkdirSync(cgroup);
    cleanups.push(() => rmdirSync(cgroup));
    writeFileSync(join(cgroup, "cgroup.procs"), String(c.pid));
    await dump("freezer", { pid: c.pid, leaveRunning: true, freezeCgroup: cgroup, timeout: 7, logLevel: 4 });
    expect(await log("freezer")).toContain(`freezing cgroup ${cgroup}: 70 x 100ms attempts, timeout: 7s`);
    // CRIU thawed the cgroup again.
    expect(readFileSync(join(cgroup, "freezer.state"), "utf8").trim()).toBe("THAWED");
    const now = c.read();
    await waitFor(() => c.read() > now, "the thawed counter to count on");
  });

  it("manage_cgroups and manage_cgroups_mode: set the mode CRIU restores cgroups in", async () => {
    const c = await workload("cgroups");
    await ownCgroup(c.pid);
    await expectDumped("cgroups", c, {});
    const restored = async (options: Partial<CriuOptions>): Promise<string> => {
      const pid = await restore("cgroups", { ...options, logLevel: 4 });
      await killAndWaitGone(pid);
      const text = await log("cgroups", CheckpointLogKind.CHECKPOINT_LOG_KIND_RESTORE);
      return /Preparing cgroups yard \(cgroups restore mode (\S+)\)/.exec(text)?.[1] ?? "not logged";
    };
    // CRIU's numbers: CG_NONE 0x1, PROPS 0x2, SOFT 0x4 (its default); IGNORE skips the cgroups.
    expect(await restored({})).toBe("0x4");
    expect(await restored({ manageCgroups: false })).toBe("not logged");
    expect(await restored({ manageCgroups: true })).toBe("0x4");
    expect(await restored({ manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_CG_NONE })).toBe("0x1");
    // The mode wins over the compatibility flag, as in CRIU.
    expect(await restored({ manageCgroups: false, manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_PROPS })).toBe(
      "0x2",
    );
  });

  it("unprivileged: CRIU leaves cgroups alone, so the dump writes no cgroup image", async () => {
    const c = await workload("unprivileged");
    await ownCgroup(c.pid);
    await dump("privileged", { pid: c.pid, leaveRunning: true });
    await dump("unprivileged", { pid: c.pid, leaveRunning: true, unprivileged: true });
    expect(existsSync(join(gw.imagesRoot, "privileged", "cgroup.img"))).toBe(true);
    expect(existsSync(join(gw.imagesRoot, "unprivileged", "cgroup.img"))).toBe(false);
  });

  it("lazy_pages: the restore waits for pages from a lazy-pages daemon, which is not there", async () => {
    const c = await workload("lazy");
    await expectDumped("lazy", c, {});
    const { err, tail } = await refusal(restore("lazy", { lazyPages: true, logLevel: 4 }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(tail).toMatch(/lazy/i);
    expect(isAlive(await restore("lazy"))).toBe(true);
  });

  it("lsm_profile: CRIU checks the LSM it names against the host's, which has none", async () => {
    const c = await workload("lsm");
    await expectDumped("lsm", c, {});
    const { tail } = await refusal(restore("lsm", { lsmProfile: "apparmor:unconfined" }));
    expect(tail).toMatch(/apparmor LSM specified but apparmor not supported by kernel/);
    await waitFor(() => !existsSync(`/proc/${c.pid}`), "the failed restore's pid to be free");
    expect(isAlive(await restore("lsm"))).toBe(true);
  });

  it("ps: the dump sends its pages to the page server named, and fails when none listens", async () => {
    const c = await workload("ps");
    const port = await closedPort();
    const { err, tail } = await refusal(
      dump("ps", { pid: c.pid, leaveRunning: true, logLevel: 4, ps: { address: "127.0.0.1", port } }),
    );
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(tail).toContain(`Can't connect to server 127.0.0.1:${port}`);
    expect(isAlive(c.pid)).toBe(true);
  });
});

describe("options CRIU validates: a value it cannot take is rejected by CRIU itself", () => {
  // CRIU answers EBADRQC when it cannot take an option, which the gateway maps to INVALID_ARGUMENT;
  // the same request without the option succeeds.
  const cases: [string, Partial<CriuOptions>][] = [
    ["empty_ns: any namespace but the network one", { emptyNs: 0x20000000 }],
    ["join_ns: an unknown namespace", { joinNs: [{ ns: "nosuchns", nsFile: "/proc/1/ns/net" }] }],
  ];
  it.each(cases)("%s", async (name, options) => {
    const c = await workload("invalid");
    const { err } = await refusal(dump("invalid", { pid: c.pid, leaveRunning: true, ...options }));
    expect(err.code, err.details).toBe(status.INVALID_ARGUMENT);
    expect(errorDetailOf(err)?.crErrno).toBe(56);
    expect(isAlive(c.pid)).toBe(true);
    await dump(`valid-${name.split(":")[0]}`, { pid: c.pid, leaveRunning: true });
  });
});

describe("options no caller may set: refused before CRIU starts", () => {
  it("config_file, exec_cmd, log_file, the tls_* paths and rst_sibling are PERMISSION_DENIED by name", async () => {
    const c = await workload("never");
    const err = await failure(
      dump("never", {
        pid: c.pid,
        configFile: "/tmp/x.conf",
        execCmd: ["/bin/true"],
        logFile: "x.log",
        tlsCacert: "/tmp/ca",
        tlsCacrl: "/tmp/crl",
        tlsCert: "/tmp/cert",
        tlsKey: "/tmp/key",
        rstSibling: true,
      }),
    );
    expect(err.code).toBe(status.PERMISSION_DENIED);
    for (const name of [
      "config_file",
      "exec_cmd",
      "log_file",
      "tls_cacert",
      "tls_cacrl",
      "tls_cert",
      "tls_key",
      "rst_sibling",
    ]) {
      expect(err.details).toContain(name);
    }
    expect(existsSync(join(gw.imagesRoot, "never"))).toBe(false);
    expect(isAlive(c.pid)).toBe(true);
  });
});

describe("options whose effect this host cannot show: CRIU accepts them", () => {
  // Each needs what this host or a remote caller lacks (docs/api-compliance.md says what, per
  // option). The call fails if the gateway drops or refuses the option, or CRIU rejects it.
  const dumps: [string, Partial<CriuOptions>][] = [
    ["evasive_devices", { evasiveDevices: true }],
    ["force_irmap", { forceIrmap: true }],
    ["auto_ext_mnt, ext_sharing, ext_masters", { autoExtMnt: true, extSharing: true, extMasters: true }],
    ["skip_mnt, enable_fs", { skipMnt: ["/nonexistent"], enableFs: ["tmpfs"] }],
    [
      "external, ext_mnt",
      { external: ["veth[nonexistent0]:x"], extMnt: [{ key: "/nonexistent", val: "k" }] },
    ],
    ["cgroup_dump_controller, cgroup_props", { cgroupDumpController: ["pids"], cgroupProps: "" }],
    ["network_lock SKIP", { networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_SKIP }],
    ["network_lock NFTABLES", { networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_NFTABLES }],
    ["pre_dump_mode", { preDumpMode: CriuPreDumpMode.CRIU_PRE_DUMP_MODE_VM_READ }],
    ["display_stats", { displayStats: true }],
    ["notify_scripts", { notifyScripts: true }],
    ["irmap_scan_paths", { irmapScanPaths: ["/tmp"] }],
    ["tls, tls_no_cn_verify", { tls: true, tlsNoCnVerify: true }],
  ];
  it.each(dumps)("dump with %s", async (name, options) => {
    const c = await workload("accepted");
    const res = await dump(`accepted-${name.replace(/[^A-Za-z0-9]+/g, "-")}`, {
      pid: c.pid,
      leaveRunning: true,
      ...options,
    });
    expect(res.checkpoint?.rootPid).toBe(c.pid);
    expect(res.statistics?.pagesWritten).toBeGreaterThan(0);
  });

  const restores: [string, Partial<CriuOptions>][] = [
    ["weak_sysctls", { weakSysctls: true }],
    ["mntns_compat_mode", { mntnsCompatMode: true }],
    ["orphan_pts_master", { orphanPtsMaster: true }],
    ["evasive_devices", { evasiveDevices: true }],
    ["root", { root: "/" }],
    ["cg_root", { cgRoot: [{ path: "/" }] }],
    ["veths", { veths: [{ ifIn: "nonexistent0", ifOut: "nonexistent1" }] }],
    ["cgroup_yard", { cgroupYard: "/nonexistent" }],
    ["lsm_mount_context", { lsmMountContext: "system_u:object_r:container_file_t:s0" }],
    ["cgroup_props_file", { cgroupPropsFile: "/nonexistent" }],
  ];
  it.each(restores)("restore with %s", async (name, options) => {
    const c = await workload("accepted-restore");
    const id = `restore-${name}`;
    await expectDumped(id, c, {});
    const pid = await restore(id, options);
    const now = c.read();
    await waitFor(() => c.read() > now, `the counter restored with ${name} to count on`);
    expect(isAlive(pid)).toBe(true);
  });
});

// Python setups, run at the top level of a workload before it counts.
/** Connects to the peer on `port` and echoes what it sends; on the stream's end, creates `path`.closed. */
function echoClient(port: number): string {
  return `import socket, threading
cli = socket.create_connection(("127.0.0.1", ${port}))
def echo():
    while True:
        try:
            data = cli.recv(64)
        except OSError:
            data = b""
        if not data:
            open(path + ".closed", "w").close()
            return
        cli.sendall(data)
threading.Thread(target=echo, daemon=True).start()
`;
}

/** A loopback listener in this process, for one connection: the peer a dump leaves outside. */
async function tcpPeer(): Promise<{ port: number; accepted: Promise<Socket> }> {
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) =>
    server.once("connection", (sk) => {
      sk.on("error", () => {});
      cleanups.push(() => void sk.destroy());
      resolve(sk);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as { port: number }).port, accepted };
}

/** Sends `text` and resolves with as much as came back; rejects when the connection ends first. */
function roundTrip(sk: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.length < text.length) return;
      stop();
      resolve(got);
    };
    const onEnd = () => {
      stop();
      reject(new Error(`the connection ended after ${JSON.stringify(got)} came back`));
    };
    const stop = () => {
      sk.off("data", onData);
      sk.off("close", onEnd);
    };
    sk.on("data", onData);
    sk.once("close", onEnd);
    sk.write(text);
  });
}

const LISTENER = `import socket
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(4)
open(path + ".port", "w").write(str(srv.getsockname()[1]))
`;

function connectTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sk = createConnection({ host: "127.0.0.1", port }, () => resolve(sk));
    sk.once("error", reject);
  });
}

/** A loopback port nobody listens on: one the kernel gave and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Moves a process into a cgroup of its own (pids controller), removed after the test. */
async function ownCgroup(pid: number): Promise<void> {
  const cgroup = join("/sys/fs/cgroup/pids", `criu-gw-test-${process.pid}-${pid}`);
  mkdirSync(cgroup);
  cleanups.push(() => rmdirSync(cgroup));
  writeFileSync(join(cgroup, "cgroup.procs"), String(pid));
}

/** 512-byte blocks the memory pages of a checkpoint take on disk. */
function pageBlocks(id: string): number {
  const dir = join(gw.imagesRoot, id);
  return readdirSync(dir)
    .filter((n) => /^pages-\d+\.img$/.test(n))
    .reduce((sum, n) => sum + statSync(join(dir, n)).blocks, 0);
}

async function unixServer(name: string): Promise<{ path: string; server: Server }> {
  const path = join(gw.dir, name);
  const server = createServer((sk) => sk.on("error", () => {}));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, server };
}
