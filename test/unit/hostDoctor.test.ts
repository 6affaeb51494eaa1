// The host doctor reads the host only through its readers: here a made-up host, to show which file
// and which `criu` answer each finding comes from, and the refusal an operation gets up front.
import { describe, expect, test } from "vitest";
import type { CriuCommandResult } from "../../src/criu/criuCommand.js";
import { GatewayError } from "../../src/domain/errors.js";
import {
  diagnoseHost,
  type HostReaders,
  hostDoctor,
  requirePageServing,
} from "../../src/domain/hostDoctor.js";
import { FINDING_NAMES, type HostFinding } from "../../src/domain/hostFindings.js";

interface FakeHost {
  files: Record<string, string>;
  /** `criu` answers by argument list joined with spaces; absent ones fail. */
  criu: Record<string, CriuCommandResult>;
  path: string[];
  release: string;
}

function readers(host: FakeHost): HostReaders & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    criuBin: "/opt/criu",
    readFile: async (path) => {
      asked.push(path);
      return host.files[path];
    },
    pids: async () =>
      Object.keys(host.files)
        .map((p) => /^\/proc\/(\d+)\/stat$/.exec(p)?.[1])
        .filter((p): p is string => p !== undefined)
        .map(Number),
    onPath: async (command) => host.path.includes(command),
    kernelRelease: () => host.release,
    criu: async (args) => host.criu[args.join(" ")] ?? { exitCode: 1, output: `Error: ${args.join(" ")}` },
  };
}

const GOOD = { exitCode: 0, output: "" };

function healthyHost(): FakeHost {
  return {
    files: {
      "/proc/sys/fs/pipe-max-size": "1048576\n",
      "/proc/self/status": "Name:\tnode\nCapBnd:\t000001ffffffffff\n",
      "/proc/self/mounts": "tmpfs /run tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n",
      "/proc/1/comm": "systemd\n",
      "/proc/1/stat": "1 (systemd) S 0 1 1 0",
      "/proc/42/stat": "42 (sleep) S 1 42 42 0",
    },
    criu: {
      "--version": { exitCode: 0, output: "Version: 4.2.1" },
      check: { exitCode: 0, output: "Looks good." },
      "check --feature mem_dirty_track": GOOD,
      "check --feature uffd": GOOD,
      "check --feature uffd-noncoop": GOOD,
      "check --feature network_lock_nftables": GOOD,
    },
    path: ["iptables-restore"],
    release: "6.18.0",
  };
}

function byName(findings: HostFinding[]): Record<string, HostFinding> {
  return Object.fromEntries(findings.map((f) => [f.name, f]));
}

describe("diagnoseHost", () => {
  test("a healthy host: every finding ok, in the documented order", async () => {
    const findings = await diagnoseHost(readers(healthyHost()));
    expect(findings.map((f) => f.name)).toEqual([...FINDING_NAMES]);
    expect(findings.filter((f) => f.state !== "ok")).toEqual([]);
  });

  test("each finding follows its own input on the host", async () => {
    const host = healthyHost();
    host.criu["--version"] = { exitCode: 0, output: "Version: 4.1.1" };
    delete host.criu["check --feature mem_dirty_track"];
    delete host.criu["check --feature uffd-noncoop"];
    delete host.criu["check --feature network_lock_nftables"];
    host.files["/proc/self/status"] = "CapBnd:\t000001fffeffffff\n";
    host.files["/proc/self/mounts"] = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
    host.files["/proc/1/comm"] = "process_api\n";
    // A zombie whose command holds a space and a parenthesis, re-parented to pid 1.
    host.files["/proc/77/stat"] = "77 (odd) name) Z 1 77 77 0";
    host.path = [];
    let f = byName(await diagnoseHost(readers(host)));
    expect(f.criu?.state).toBe("degraded");
    expect(f["inet-sockets"]?.state).toBe("missing");
    expect(f["mem-track"]?.state).toBe("missing");
    expect(f.userfaultfd?.state).toBe("degraded");
    expect(f["pipe-max-size"]?.state).toBe("missing");
    expect(f["cap-sys-resource"]?.state).toBe("degraded");
    expect(f["network-lock"]?.state).toBe("missing");
    expect(f["cgroup-v2"]?.state).toBe("degraded");
    expect(f["pid1-reaping"]?.detail).toContain("1 zombie waits");
    expect(f["kdat-cache"]?.state).toBe("degraded");
    // A cache CRIU wrote anyway is enough.
    host.files["/run/criu.kdat"] = "\u0000";
    expect(byName(await diagnoseHost(readers(host)))["kdat-cache"]?.state).toBe("ok");
    delete host.files["/run/criu.kdat"];
    // Where the kernel lists pid 1's children, only they are looked at.
    host.files["/proc/1/task/1/children"] = "42 ";
    f = byName(await diagnoseHost(readers(host)));
    expect(f["pid1-reaping"]?.detail).not.toContain("zombie");
    host.files["/proc/1/task/1/children"] = "42 77";
    f = byName(await diagnoseHost(readers(host)));
    expect(f["pid1-reaping"]?.detail).toContain("1 zombie waits");
  });

  test("a criu that does not run leaves the criu finding missing", async () => {
    const host = healthyHost();
    host.criu = {};
    const f = byName(await diagnoseHost(readers(host)));
    expect(f.criu?.state).toBe("missing");
    expect(f.criu?.detail).toContain("/opt/criu");
  });
});

describe("requirePageServing", () => {
  test("refuses with FAILED_PRECONDITION naming pipe-max-size and its fix, reading the sysctl at each call", async () => {
    const host = healthyHost();
    host.files["/proc/self/status"] = "CapBnd:\t000001fffeffffff\n";
    const r = readers(host);
    const err = await requirePageServing(r, "a dump with lazy_pages").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("FAILED_PRECONDITION");
    expect((err as GatewayError).message).toMatch(
      /^a dump with lazy_pages, whose page server cannot run here/,
    );
    expect((err as GatewayError).message).toContain("host finding pipe-max-size is missing");
    expect((err as GatewayError).message).toContain("sysctl -w fs.pipe-max-size=4194304");
    host.files["/proc/sys/fs/pipe-max-size"] = "4194304\n";
    await expect(requirePageServing(r, "a dump with lazy_pages")).resolves.toBeUndefined();
    expect(r.asked.filter((p) => p === "/proc/sys/fs/pipe-max-size")).toHaveLength(2);
  });

  test("lets it run whatever the sysctl when CRIU has CAP_SYS_RESOURCE", async () => {
    await expect(requirePageServing(readers(healthyHost()), "a page server")).resolves.toBeUndefined();
  });
});

describe("hostDoctor", () => {
  test("asks CRIU once for the gateway's life, and reads the host's files at every call", async () => {
    const host = healthyHost();
    const r = readers(host);
    let criuRuns = 0;
    const criu = r.criu;
    r.criu = (args) => {
      criuRuns++;
      return criu(args);
    };
    const findings = hostDoctor(r);
    const first = byName(await findings());
    const runsForOne = criuRuns;
    expect(runsForOne).toBeGreaterThan(0);
    host.files["/proc/sys/fs/pipe-max-size"] = "65536\n";
    host.files["/proc/self/status"] = "CapBnd:\t000001fffeffffff\n";
    const second = byName(await findings());
    expect(criuRuns).toBe(runsForOne);
    expect(first["pipe-max-size"]?.state).toBe("ok");
    expect(second["pipe-max-size"]?.state).toBe("missing");
    expect(second["pipe-max-size"]?.detail).toContain("65536");
  });
});
