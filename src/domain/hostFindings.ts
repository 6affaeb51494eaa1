// What this host can and cannot do for CRIU, one finding per item, each decided from plain inputs
// (file contents, exit codes) so that every rule can be tested without the host. hostDoctor.ts
// gathers the inputs.
import type { CriuCommandResult } from "../criu/criuCommand.js";

/** ok: works. degraded: works with a limit the finding names. missing: what it blocks cannot run. */
export type FindingState = "ok" | "degraded" | "missing";

/** The findings, in the order the doctor reports them; the names are stable (the API carries them). */
export const FINDING_NAMES = [
  "criu",
  "inet-sockets",
  "mem-track",
  "userfaultfd",
  "pipe-max-size",
  "cap-sys-resource",
  "network-lock",
  "cgroup-v2",
  "pid1-reaping",
  "kdat-cache",
] as const;

export type FindingName = (typeof FINDING_NAMES)[number];

export interface HostFinding {
  name: FindingName;
  state: FindingState;
  /** What was found, e.g. "/proc/sys/fs/pipe-max-size is 1048576". */
  detail: string;
  /** What cannot run, or runs limited, because of it; empty when ok. */
  blocks: string;
  /** The command (or change) that fixes it; empty when ok. */
  fix: string;
}

function ok(name: FindingName, detail: string): HostFinding {
  return { name, state: "ok", detail, blocks: "", fix: "" };
}

/** A CRIU version as [major, minor, sublevel]. */
export type Version = readonly [number, number, number];

/** The CRIU the gateway is built and tested against. */
export const CURRENT_CRIU: Version = [4, 2, 0];

export function versionBelow(v: Version, than: Version): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== than[i]) return (v[i] ?? 0) < (than[i] ?? 0);
  return false;
}

export function versionText(v: Version): string {
  return v.join(".");
}

/** Whether a kernel release ("6.18.44-fc") is at least major.minor; false when it cannot be read. */
export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

const INSTALL_CRIU =
  "bash scripts/install-criu.sh in the gateway's directory (builds CRIU 4.2), or pass --criu PATH";

export function criuFinding(
  bin: string,
  version: Version | undefined,
  check: CriuCommandResult,
): HostFinding {
  if (version === undefined) {
    return {
      name: "criu",
      state: "missing",
      detail: `${bin} does not run or print a version: ${lastLine(check.output) || "no output"}`,
      blocks: "everything: the gateway cannot start",
      fix: INSTALL_CRIU,
    };
  }
  // No path from here on: Check sends these to remote callers.
  const which = `CRIU ${versionText(version)}`;
  if (check.exitCode !== 0) {
    return {
      name: "criu",
      state: "missing",
      detail: `${which}; \`criu check\` fails: ${lastLine(check.output) || `exit code ${check.exitCode}`}`,
      blocks: "every dump and restore: the kernel lacks what CRIU needs",
      fix: `${INSTALL_CRIU}; run \`criu check\` for the kernel features it misses`,
    };
  }
  if (versionBelow(version, CURRENT_CRIU)) {
    return {
      name: "criu",
      state: "degraded",
      detail: `${which}, older than the ${versionText(CURRENT_CRIU)} the gateway is tested with; \`criu check\` passes`,
      blocks: "fixes of CRIU 4.2 (see inet-sockets)",
      fix: INSTALL_CRIU,
    };
  }
  return ok("criu", `${which}; \`criu check\` passes`);
}

/**
 * Linux 6.16 answers EOPNOTSUPP to SO_PASSCRED/SO_PASSSEC on sockets other than unix and netlink;
 * CRIU before 4.2 reads them from every socket it dumps, so it fails on any inet socket.
 */
export function inetSocketsFinding(version: Version | undefined, kernelRelease: string): HostFinding {
  const kernel = `kernel ${kernelRelease}`;
  if (version === undefined) return ok("inet-sockets", `${kernel}; no CRIU version known (see criu)`);
  if (!versionBelow(version, CURRENT_CRIU) || !kernelAtLeast(kernelRelease, 6, 16)) {
    return ok("inet-sockets", `CRIU ${versionText(version)} on ${kernel} dumps inet sockets`);
  }
  return {
    name: "inet-sockets",
    state: "missing",
    detail: `CRIU ${versionText(version)} on ${kernel}: Linux >= 6.16 refuses SO_PASSCRED on inet sockets, which CRIU < 4.2 reads`,
    blocks:
      "dumps of any process holding an inet socket (a TCP or UDP listener or connection): CRIU fails with `Can't get 1:16 opt`",
    fix: INSTALL_CRIU,
  };
}

export function memTrackFinding(available: boolean): HostFinding {
  if (available) return ok("mem-track", "the kernel tracks dirty memory (soft-dirty bits)");
  return {
    name: "mem-track",
    state: "missing",
    detail:
      "the kernel does not track dirty memory (mem_track=false, as FeatureCheck and `criu check --feature mem_dirty_track` report)",
    blocks: "PreDump, Dump with track_mem, and incremental dumps on a pre-dump",
    fix: "a kernel built with CONFIG_MEM_SOFT_DIRTY=y (check: grep SOFT_DIRTY /boot/config-$(uname -r))",
  };
}

export function userfaultfdFinding(uffd: boolean, noncooperative: boolean): HostFinding {
  if (uffd && noncooperative) return ok("userfaultfd", "userfaultfd works, non-cooperative events included");
  const fix =
    "a kernel with CONFIG_USERFAULTFD=y; for a CRIU without CAP_SYS_PTRACE: sysctl -w vm.unprivileged_userfaultfd=1";
  if (uffd) {
    return {
      name: "userfaultfd",
      state: "degraded",
      detail: "userfaultfd works without non-cooperative events (fork, remap, unmap)",
      blocks: "lazy restores (lazy_pages) of trees that fork or remap memory while pages arrive",
      fix,
    };
  }
  return {
    name: "userfaultfd",
    state: "missing",
    detail: "userfaultfd is not available (`criu check --feature uffd` fails)",
    blocks: "Restore with lazy_pages",
    fix,
  };
}

/**
 * CRIU's page server sizes the pipe it tee()s pages through to its PIPE_MAX_SIZE pages, rounded up
 * by the kernel to a power of two: 4 MiB with 4 KiB pages. Without CAP_SYS_RESOURCE that size is
 * capped by fs.pipe-max-size; CRIU ignores the failed resize, and its first tee() of more than the
 * default 64 KiB fails (`page-pipe: tee: 65536`), which ends the server.
 */
export const PAGE_SERVER_PIPE_BYTES = 4 * 1024 * 1024;

export function pipeMaxSizeFinding(
  pipeMaxSize: number | undefined,
  criuHasSysResource: boolean,
): HostFinding {
  const current = pipeMaxSize === undefined ? "unreadable" : String(pipeMaxSize);
  if (criuHasSysResource) {
    return ok(
      "pipe-max-size",
      `/proc/sys/fs/pipe-max-size is ${current}; CRIU has CAP_SYS_RESOURCE, which lifts it`,
    );
  }
  if (pipeMaxSize !== undefined && pipeMaxSize >= PAGE_SERVER_PIPE_BYTES) {
    return ok("pipe-max-size", `/proc/sys/fs/pipe-max-size is ${current}, enough for CRIU's page server`);
  }
  return {
    name: "pipe-max-size",
    state: "missing",
    detail: `/proc/sys/fs/pipe-max-size is ${current}; CRIU, without CAP_SYS_RESOURCE, needs ${PAGE_SERVER_PIPE_BYTES} to serve pages`,
    blocks:
      "Dump and StartPageServer with lazy_pages: CRIU's page server would die with `page-pipe: tee: 65536`; the gateway refuses them",
    fix: `sysctl -w fs.pipe-max-size=${PAGE_SERVER_PIPE_BYTES} (persist it in /etc/sysctl.d/)`,
  };
}

const CAP_SYS_RESOURCE = 24;

/** Whether a capability set of /proc/PID/status ("CapBnd:\t000001fffeffffff") holds capability `bit`. */
export function hasCapability(status: string, set: "CapBnd" | "CapEff", bit: number): boolean {
  const m = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, "m").exec(status);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

/** CRIU, run by the gateway, can have CAP_SYS_RESOURCE only if the gateway's bounding set holds it. */
export function criuHasSysResource(gatewayStatus: string): boolean {
  return hasCapability(gatewayStatus, "CapBnd", CAP_SYS_RESOURCE);
}

export function capSysResourceFinding(has: boolean): HostFinding {
  if (has) return ok("cap-sys-resource", "CRIU runs with CAP_SYS_RESOURCE");
  return {
    name: "cap-sys-resource",
    state: "degraded",
    detail:
      "CRIU runs without CAP_SYS_RESOURCE (not in the gateway's bounding set): it cannot raise RLIMIT_NOFILE and logs `rlimit: Can't setup RLIMIT_NOFILE` on every run",
    blocks:
      "trees holding more files than the gateway's open-file limit; page-server pipes beyond fs.pipe-max-size (see pipe-max-size)",
    fix: "run the gateway with CAP_SYS_RESOURCE (systemd: AmbientCapabilities/CapabilityBoundingSet; docker: --cap-add SYS_RESOURCE), or raise its limit first: ulimit -n 1048576",
  };
}

export function networkLockFinding(iptablesRestore: boolean, nftables: boolean): HostFinding {
  const methods = [iptablesRestore && "iptables", nftables && "nftables"].filter(Boolean).join(" and ");
  if (iptablesRestore && nftables)
    return ok("network-lock", "network_lock can use iptables (the default) and nftables");
  const blocks =
    "dumps and restores that lock the network (tcp_established connections, network namespaces) with the missing method";
  if (iptablesRestore || nftables) {
    return {
      name: "network-lock",
      state: "degraded",
      detail: `network_lock can use ${methods} only`,
      blocks: iptablesRestore
        ? "network_lock NFTABLES: CRIU lacks libnftables or the kernel nftables set concatenations"
        : "network_lock IPTABLES, CRIU's default: iptables-restore is not on PATH; ask for NFTABLES",
      fix: iptablesRestore
        ? "a CRIU built with libnftables (scripts/install-criu.sh)"
        : "apt-get install iptables",
    };
  }
  return {
    name: "network-lock",
    state: "missing",
    detail: "neither iptables-restore nor CRIU's nftables locking is available",
    blocks,
    fix: "apt-get install iptables",
  };
}

/** The cgroup mounts of /proc/self/mounts: "unified" (v2 at /sys/fs/cgroup), "hybrid", "v1" or "none". */
export function cgroupLayout(mounts: string): "unified" | "hybrid" | "v1" | "none" {
  const lines = mounts.split("\n").map((l) => l.split(" "));
  const v2 = lines.filter((f) => f[2] === "cgroup2");
  const v1 = lines.some((f) => f[2] === "cgroup");
  if (v2.some((f) => f[1] === "/sys/fs/cgroup")) return "unified";
  if (v2.length > 0) return v1 ? "hybrid" : "unified";
  return v1 ? "v1" : "none";
}

export function cgroupFinding(mounts: string): HostFinding {
  const layout = cgroupLayout(mounts);
  if (layout === "unified") return ok("cgroup-v2", "cgroup v2 (unified hierarchy)");
  const fix = "boot with systemd.unified_cgroup_hierarchy=1, or: mount -t cgroup2 none /sys/fs/cgroup";
  if (layout === "none") {
    return {
      name: "cgroup-v2",
      state: "missing",
      detail: "no cgroup hierarchy is mounted",
      blocks: "manage_cgroups, freeze_cgroup and cgroup_root: CRIU finds no cgroups to dump or restore into",
      fix,
    };
  }
  return {
    name: "cgroup-v2",
    state: "degraded",
    detail: layout === "hybrid" ? "cgroup v1 controllers with a v2 hierarchy beside them" : "cgroup v1 only",
    blocks:
      "trees in cgroup v2 hierarchies (as cgroup-v2 container runtimes create them) cannot be dumped with their cgroups; freeze_cgroup needs a v1 freezer path",
    fix,
  };
}

/** Inits known to reap orphans as they die. */
const REAPING_INITS = new Set([
  "systemd",
  "init",
  "tini",
  "dumb-init",
  "catatonit",
  "runit",
  "s6-svscan",
  "openrc-init",
]);

/** pid 1's name and how many zombies wait for it now. */
export function pid1Finding(comm: string, zombieChildren: number): HostFinding {
  const known = REAPING_INITS.has(comm);
  if (known && zombieChildren === 0) return ok("pid1-reaping", `pid 1 is ${comm}, which reaps orphans`);
  const waiting =
    zombieChildren === 0
      ? ""
      : `; ${zombieChildren === 1 ? "1 zombie waits" : `${zombieChildren} zombies wait`} for it`;
  return {
    name: "pid1-reaping",
    state: "degraded",
    detail: `pid 1 is ${comm || "unknown"}, ${known ? "an init" : "not an init"} known to reap orphans promptly${waiting}`,
    blocks:
      "restoring a dump of a tree whose parent is pid 1, soon after the dump: its pids stay taken until pid 1 reaps them, and CRIU cannot restore onto them",
    fix: "run workloads under a reaping init (systemd, tini, docker run --init), or restore once /proc/PID of the dumped root is gone",
  };
}

/**
 * Whether CRIU can keep what it detects of the kernel (/run/criu.kdat, written only on a tmpfs).
 * Without it every CRIU process, and in RPC mode every request, detects it again before it reads
 * an image: tens of milliseconds, in a dump's or restore's start and in a migration's freeze.
 */
export function kdatCacheFinding(mounts: string, cached: boolean): HostFinding {
  const runIsTmpfs = mounts.split("\n").some((line) => {
    const [, mountPoint, fsType] = line.split(" ");
    return mountPoint === "/run" && fsType === "tmpfs";
  });
  if (cached) return ok("kdat-cache", "CRIU keeps its kernel feature cache in /run/criu.kdat");
  if (runIsTmpfs)
    return ok("kdat-cache", "/run is a tmpfs: CRIU writes its kernel feature cache there on its first run");
  return {
    name: "kdat-cache",
    state: "degraded",
    detail: "/run is not a tmpfs, so CRIU cannot keep its kernel feature cache (/run/criu.kdat)",
    blocks:
      "nothing, but every CRIU request detects the kernel's features again before it reads an image (20-80 ms on a small VM): in each dump's and restore's start, and in a migration's freeze",
    fix: "mount a tmpfs on /run early at boot (systemd does: mount -t tmpfs -o mode=755 tmpfs /run)",
  };
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}
