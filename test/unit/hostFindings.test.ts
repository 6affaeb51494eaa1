// Each of the host doctor's rules, decided from plain inputs: what makes a finding ok, degraded or
// missing, and that every finding which is not ok says what it blocks and how to fix it.
import { describe, expect, test } from "vitest";
import {
  capSysResourceFinding,
  cgroupFinding,
  cgroupLayout,
  criuFinding,
  criuHasSysResource,
  type HostFinding,
  inetSocketsFinding,
  kdatCacheFinding,
  kernelAtLeast,
  memTrackFinding,
  networkLockFinding,
  PAGE_SERVER_PIPE_BYTES,
  pid1Finding,
  pipeMaxSizeFinding,
  userfaultfdFinding,
  versionBelow,
} from "../../src/domain/hostFindings.js";

const passes = { exitCode: 0, output: "Looks good." };

/** A finding that is not ok names what it blocks and a fix; an ok one has neither. */
function expectWellFormed(f: HostFinding): void {
  expect(f.detail).not.toBe("");
  if (f.state === "ok") {
    expect([f.blocks, f.fix]).toEqual(["", ""]);
  } else {
    expect(f.blocks).not.toBe("");
    expect(f.fix).not.toBe("");
  }
}

describe("versions", () => {
  test("compare as numbers, part by part", () => {
    expect(versionBelow([4, 1, 1], [4, 2, 0])).toBe(true);
    expect(versionBelow([4, 2, 0], [4, 2, 0])).toBe(false);
    expect(versionBelow([4, 10, 0], [4, 2, 0])).toBe(false);
    expect(versionBelow([3, 19, 9], [4, 0, 0])).toBe(true);
  });

  test("a kernel release is read up to its minor number", () => {
    expect(kernelAtLeast("6.18.44-fc-v657", 6, 16)).toBe(true);
    expect(kernelAtLeast("6.16.0", 6, 16)).toBe(true);
    expect(kernelAtLeast("6.15.9-amd64", 6, 16)).toBe(false);
    expect(kernelAtLeast("5.10.0", 6, 16)).toBe(false);
    expect(kernelAtLeast("7.0.1", 6, 16)).toBe(true);
    expect(kernelAtLeast("unknown", 6, 16)).toBe(false);
  });
});

describe("criu", () => {
  test("ok when CRIU is at least 4.2 and `criu check` passes", () => {
    const f = criuFinding("/usr/sbin/criu", [4, 2, 1], passes);
    expect(f.state).toBe("ok");
    expect(f.detail).toContain("CRIU 4.2.1");
    expect(f.detail).not.toContain("/usr/sbin"); // Check sends it to remote callers
    expectWellFormed(f);
  });

  test("degraded when older than 4.2 though `criu check` passes", () => {
    const f = criuFinding("criu", [4, 1, 1], passes);
    expect(f.state).toBe("degraded");
    expect(f.fix).toContain("install-criu.sh");
    expectWellFormed(f);
  });

  test("missing when `criu check` fails, quoting CRIU's last line", () => {
    const f = criuFinding("criu", [4, 2, 1], { exitCode: 1, output: "Warn: x\nError: no ptrace" });
    expect(f.state).toBe("missing");
    expect(f.detail).toContain("Error: no ptrace");
    expectWellFormed(f);
  });

  test("missing when the binary prints no version", () => {
    const f = criuFinding("/nope/criu", undefined, { exitCode: -1, output: "cannot run /nope/criu: ENOENT" });
    expect(f.state).toBe("missing");
    expect(f.detail).toContain("ENOENT");
    expect(f.blocks).toMatch(/cannot start/);
  });
});

describe("inet-sockets", () => {
  test("CRIU before 4.2 on Linux 6.16 or later cannot dump processes holding inet sockets", () => {
    const f = inetSocketsFinding([4, 1, 1], "6.18.44");
    expect(f.state).toBe("missing");
    expect(f.blocks).toMatch(/inet socket/);
    expect(f.blocks).toMatch(/Can't get 1:16 opt/);
    expectWellFormed(f);
  });

  test("ok with CRIU 4.2, or on a kernel before 6.16", () => {
    expect(inetSocketsFinding([4, 2, 1], "6.18.44").state).toBe("ok");
    expect(inetSocketsFinding([4, 1, 1], "6.15.2").state).toBe("ok");
    expect(inetSocketsFinding(undefined, "6.18.44").state).toBe("ok");
  });
});

describe("mem-track and userfaultfd", () => {
  test("mem-track: missing blocks pre-dumps and incremental dumps", () => {
    expect(memTrackFinding(true).state).toBe("ok");
    const f = memTrackFinding(false);
    expect(f.state).toBe("missing");
    expect(f.blocks).toMatch(/PreDump/);
    expect(f.blocks).toMatch(/track_mem/);
    expect(f.fix).toMatch(/CONFIG_MEM_SOFT_DIRTY/);
    expectWellFormed(f);
  });

  test("userfaultfd: missing blocks lazy restores; without non-cooperative events it is degraded", () => {
    expect(userfaultfdFinding(true, true).state).toBe("ok");
    expect(userfaultfdFinding(true, false).state).toBe("degraded");
    const f = userfaultfdFinding(false, false);
    expect(f.state).toBe("missing");
    expect(f.blocks).toMatch(/lazy_pages/);
    for (const g of [userfaultfdFinding(true, false), f]) expectWellFormed(g);
  });
});

describe("pipe-max-size and CAP_SYS_RESOURCE", () => {
  test("CRIU's page server needs 4 MiB pipes", () => {
    expect(PAGE_SERVER_PIPE_BYTES).toBe(4194304);
  });

  test("below 4 MiB without CAP_SYS_RESOURCE, serving lazy pages is missing, and the fix is the sysctl", () => {
    const f = pipeMaxSizeFinding(1048576, false);
    expect(f.state).toBe("missing");
    expect(f.detail).toContain("1048576");
    expect(f.blocks).toMatch(/lazy_pages/);
    expect(f.fix).toContain("sysctl -w fs.pipe-max-size=4194304");
    expectWellFormed(f);
    expect(pipeMaxSizeFinding(PAGE_SERVER_PIPE_BYTES - 1, false).state).toBe("missing");
    expect(pipeMaxSizeFinding(undefined, false).state).toBe("missing");
  });

  test("ok at 4 MiB or more, or at any size when CRIU has CAP_SYS_RESOURCE", () => {
    expect(pipeMaxSizeFinding(PAGE_SERVER_PIPE_BYTES, false).state).toBe("ok");
    expect(pipeMaxSizeFinding(1048576, true).state).toBe("ok");
  });

  test("CAP_SYS_RESOURCE (bit 24) is read from the gateway's bounding set", () => {
    const without = "CapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nCapBnd:\t000001fffeffffff\n";
    const withIt = "CapInh:\t0000000000000000\nCapBnd:\t000001ffffffffff\n";
    expect(criuHasSysResource(without)).toBe(false);
    expect(criuHasSysResource(withIt)).toBe(true);
    expect(criuHasSysResource("")).toBe(false);
  });

  test("without CAP_SYS_RESOURCE CRIU is degraded: it cannot raise RLIMIT_NOFILE", () => {
    expect(capSysResourceFinding(true).state).toBe("ok");
    const f = capSysResourceFinding(false);
    expect(f.state).toBe("degraded");
    expect(f.detail).toMatch(/RLIMIT_NOFILE/);
    expectWellFormed(f);
  });
});

describe("network-lock", () => {
  test("ok with both methods, degraded with one, missing with none", () => {
    expect(networkLockFinding(true, true).state).toBe("ok");
    const nftOnly = networkLockFinding(false, true);
    expect(nftOnly.state).toBe("degraded");
    expect(nftOnly.blocks).toMatch(/IPTABLES/);
    expect(nftOnly.fix).toBe("apt-get install iptables");
    const iptOnly = networkLockFinding(true, false);
    expect(iptOnly.state).toBe("degraded");
    expect(iptOnly.blocks).toMatch(/NFTABLES/);
    const none = networkLockFinding(false, false);
    expect(none.state).toBe("missing");
    for (const f of [nftOnly, iptOnly, none]) expectWellFormed(f);
  });
});

describe("cgroup-v2", () => {
  const v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\ntmpfs /sys/fs/cgroup tmpfs rw 0 0\n";
  const hybrid = `${v1}cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n`;
  const unified = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";

  test("the layout is read from the mount table", () => {
    expect(cgroupLayout(unified)).toBe("unified");
    expect(cgroupLayout(hybrid)).toBe("hybrid");
    expect(cgroupLayout(v1)).toBe("v1");
    expect(cgroupLayout("proc /proc proc rw 0 0\n")).toBe("none");
  });

  test("unified is ok, v1 and hybrid degraded, none missing", () => {
    expect(cgroupFinding(unified).state).toBe("ok");
    expect(cgroupFinding(v1).state).toBe("degraded");
    expect(cgroupFinding(hybrid).state).toBe("degraded");
    expect(cgroupFinding("").state).toBe("missing");
    for (const m of [v1, hybrid, ""]) expectWellFormed(cgroupFinding(m));
  });
});

describe("pid1-reaping", () => {
  test("ok under a known init with no zombies waiting", () => {
    expect(pid1Finding("systemd", 0).state).toBe("ok");
  });

  test("degraded under an unknown pid 1, or when zombies wait for it", () => {
    const unknown = pid1Finding("process_api", 0);
    expect(unknown.state).toBe("degraded");
    expect(unknown.detail).toContain("process_api");
    const waiting = pid1Finding("systemd", 3);
    expect(waiting.state).toBe("degraded");
    expect(waiting.detail).toContain("3 zombies wait");
    for (const f of [unknown, waiting]) expectWellFormed(f);
  });
});

describe("kdat-cache", () => {
  const tmpfsRun = "proc /proc proc rw 0 0\ntmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0\n";
  const plainRun = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw,relatime 0 0\n";

  test("ok with a cache, or with a tmpfs on /run where CRIU writes one", () => {
    expect(kdatCacheFinding(plainRun, true).state).toBe("ok");
    expect(kdatCacheFinding(tmpfsRun, false).state).toBe("ok");
    // A tmpfs elsewhere does not count.
    expect(kdatCacheFinding("tmpfs /run/user/0 tmpfs rw 0 0\n", false).state).toBe("degraded");
  });

  test("degraded where /run is on the root file system and no cache exists", () => {
    const found = kdatCacheFinding(plainRun, false);
    expect(found.state).toBe("degraded");
    expect(found.detail).toContain("/run is not a tmpfs");
    expectWellFormed(found);
  });
});
