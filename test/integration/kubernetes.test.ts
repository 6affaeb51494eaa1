// deploy/kubernetes: the manifests validate against Kubernetes' schemas (kubernetes-models), fit
// together (labels, ports, volumes, probes), carry a policy the gateway accepts, and ask for
// capabilities that are enough: a gateway confined to exactly the DaemonSet's capabilities dumps
// and restores a real process with real CRIU. The container build file builds the CRIU the
// installer builds.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Service } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CriuServiceClient } from "../../gen/criu/gateway/v1/gateway.js";
import { packageRoot } from "../../src/packageRoot.js";
import { criuBin, dumpWith, restoreWith } from "../support/gateway.js";
import { TestProcesses } from "../support/processes.js";
import { waitFor } from "../support/workload.js";

const run = promisify(execFile);
const DIR = join(packageRoot, "deploy", "kubernetes");

type Manifest = { apiVersion: string; kind: string; metadata: { name: string } } & Record<string, unknown>;

// A model per kind the manifests use; validate() checks an object against Kubernetes' schema.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
};

function manifests(): Manifest[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(DIR, f), "utf8")).map((doc) => {
        expect(doc.errors, f).toEqual([]);
        return doc.toJS() as Manifest;
      }),
    );
}

function only<T>(kind: string): T {
  const found = manifests().filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as T;
}

interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  securityContext: {
    privileged: boolean;
    capabilities: { drop: string[]; add: string[] };
    seccompProfile: { type: string };
  };
  readinessProbe: { exec: { command: string[] } };
  livenessProbe: { exec: { command: string[] } };
  volumeMounts: { name: string; mountPath: string }[];
}

interface DaemonSetShape {
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        hostPID: boolean;
        containers: Container[];
        volumes: { name: string; hostPath?: { path: string }; secret?: { secretName: string } }[];
      };
    };
  };
}

function gatewayContainer(ds: DaemonSetShape): Container {
  const container = ds.spec.template.spec.containers[0];
  if (!container) throw new Error("the DaemonSet has no container");
  return container;
}

function arg(container: Container, flag: string): string[] {
  return container.args.filter((a) => a.startsWith(`--${flag}=`)).map((a) => a.slice(flag.length + 3));
}

describe("the Kubernetes manifests", () => {
  it("are valid Kubernetes objects of the kinds expected", () => {
    const all = manifests();
    expect(all.map((m) => `${m.apiVersion}/${m.kind}`).sort()).toEqual(Object.keys(MODELS).sort());
    for (const m of all) {
      const Model = MODELS[`${m.apiVersion}/${m.kind}`];
      expect(Model, `${m.apiVersion}/${m.kind}`).toBeDefined();
      if (Model) expect(() => new Model(m as never).validate(), m.metadata.name).not.toThrow();
    }
  });

  it("are checked for real: a broken DaemonSet fails validation", () => {
    const ds = only<DaemonSetShape>("DaemonSet");
    (gatewayContainer(ds).securityContext as unknown as Record<string, unknown>).privileged = "no";
    expect(() => new DaemonSet(ds as never).validate()).toThrow(/privileged must be boolean/);
  });

  it("run the gateway in the node's pid namespace, unprivileged but for CRIU's capabilities", () => {
    const ds = only<DaemonSetShape>("DaemonSet");
    const pod = ds.spec.template.spec;
    const c = gatewayContainer(ds);
    expect(pod.hostPID).toBe(true);
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.capabilities.drop).toEqual(["ALL"]);
    expect(c.securityContext.capabilities.add).toContain("CHECKPOINT_RESTORE");
    expect(c.securityContext.capabilities.add).not.toContain("SYS_MODULE");
    expect(c.securityContext.seccompProfile.type).toBe("Unconfined");
  });

  it("keep images on the node, certificates from the Secret, and probe grpc.health.v1 on the socket", () => {
    const ds = only<DaemonSetShape>("DaemonSet");
    const pod = ds.spec.template.spec;
    const c = gatewayContainer(ds);
    const mountOf = (path: string) =>
      c.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`) || path === m.mountPath);
    const volume = (name: string | undefined) => pod.volumes.find((v) => v.name === name);

    const imagesRoot = arg(c, "images-root")[0] ?? "";
    expect(volume(mountOf(imagesRoot)?.name)?.hostPath?.path).toBe(imagesRoot);
    for (const flag of ["tls-cert", "tls-key", "tls-client-ca"]) {
      expect(volume(mountOf(arg(c, flag)[0] ?? "")?.name)?.secret?.secretName).toBe("criu-gateway-tls");
    }
    const socket = arg(c, "listen").find((a) => a.startsWith("unix:")) ?? "";
    expect(volume(mountOf(socket.slice("unix:".length))?.name)?.hostPath).toBeDefined();
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      expect(probe.exec.command[0]).toBe("/opt/criu-gateway/bin/criu-gateway-health.js");
      expect(probe.exec.command[1]).toBe(socket);
    }
    expect(c.livenessProbe.exec.command[2]).toBe("criu.gateway.v1.CriuService");
  });

  it("expose the metrics port through the Service, selecting the DaemonSet's pods", () => {
    const ds = only<DaemonSetShape>("DaemonSet");
    const svc = only<{ spec: { selector: Record<string, string>; ports: { targetPort: string }[] } }>(
      "Service",
    );
    expect(ds.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    const metrics = gatewayContainer(ds).ports.find((p) => p.name === svc.spec.ports[0]?.targetPort);
    expect(metrics?.containerPort).toBe(9464);
  });

  it("carry a policy the gateway accepts", async () => {
    const map = only<{ data: Record<string, string> }>("ConfigMap");
    const dir = mkdtempSync(join(tmpdir(), "criu-gw-k8s-policy-"));
    try {
      const file = join(dir, "policy.json");
      writeFileSync(file, map.data["policy.json"] ?? "");
      const { stdout } = await run(process.execPath, [
        join(packageRoot, "bin", "criu-gateway.js"),
        "policy-check",
        file,
      ]);
      expect(stdout).toMatch(/valid, 2 grants/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a gateway with only the DaemonSet's capabilities", () => {
  const processes = new TestProcesses();
  let dir: string;
  let gateway: ChildProcess;
  let client: CriuServiceClient;
  let socket: string;
  let capabilities: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "criu-gw-k8s-"));
    socket = join(dir, "gw.sock");
    capabilities = gatewayContainer(only<DaemonSetShape>("DaemonSet")).securityContext.capabilities.add;
    const bounding = ["-all", ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(",");
    gateway = spawn(
      "setpriv",
      [
        `--bounding-set=${bounding}`,
        "--",
        process.execPath,
        join(packageRoot, "bin", "criu-gateway.js"),
        "serve",
        `--listen=unix:${socket}`,
        `--images-root=${join(dir, "images")}`,
        `--criu=${criuBin()}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    await waitFor(() => existsSync(socket) || gateway.exitCode !== null, "the confined gateway to listen");
    expect(gateway.exitCode).toBeNull();
    client = new CriuServiceClient(`unix:${socket}`, credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await processes.stopAll();
    if (gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once("exit", resolve));
      gateway.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs with exactly those capabilities (those this machine has)", () => {
    const mask = (pid: number | "self", field: string) => {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      return BigInt(`0x${new RegExp(`^${field}:\\s+([0-9a-f]+)$`, "m").exec(status)?.[1] ?? "0"}`);
    };
    const listed = capabilities.reduce((m, name) => m | (1n << BigInt(CAP_NUMBERS[name] ?? 99)), 0n);
    // The test runs without some capabilities (CAP_SYS_RESOURCE here): it cannot give them.
    const expected = listed & mask("self", "CapBnd");
    expect(mask(gateway.pid ?? 0, "CapEff").toString(16)).toBe(expected.toString(16));
  });

  it("dumps a container's process and restores it, and it counts on", async () => {
    // CRIU can give a restored process only capabilities it has itself: the workload is a
    // process with a container runtime's default capabilities.
    const c = await processes.counter(dir, "confined", { capabilities: CONTAINER_DEFAULT_CAPABILITIES });
    await dumpWith(client, "confined", { pid: c.pid });
    await c.exited;
    const atDump = c.read();
    const restored = await restoreWith(client, "confined");
    processes.restored(restored.pid);
    expect(restored.pid).toBe(c.pid);
    await waitFor(() => c.read() > atDump, "the restored counter to count on");
  });

  it("answers the probe's health check on its socket, and the probe fails without a gateway", async () => {
    const probe = join(packageRoot, "bin", "criu-gateway-health.js");
    await run(process.execPath, [probe, `unix:${socket}`, "criu.gateway.v1.CriuService"]);
    const missing = await run(process.execPath, [probe, `unix:${join(dir, "none.sock")}`]).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect("code" in missing ? missing.code : 0).toBe(1);
    expect(missing.stderr).toMatch(/none\.sock/);
  });
});

// What containerd and CRI-O give a container's processes unless told otherwise.
const CONTAINER_DEFAULT_CAPABILITIES = [
  "chown",
  "dac_override",
  "fsetid",
  "fowner",
  "mknod",
  "net_raw",
  "setgid",
  "setuid",
  "setfcap",
  "setpcap",
  "net_bind_service",
  "sys_chroot",
  "kill",
  "audit_write",
];

// Linux's capability numbers (linux/capability.h), for the names the DaemonSet uses.
const CAP_NUMBERS: Record<string, number> = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  IPC_OWNER: 15,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYS_NICE: 23,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  MKNOD: 27,
  LEASE: 28,
  AUDIT_WRITE: 29,
  AUDIT_CONTROL: 30,
  SETFCAP: 31,
  CHECKPOINT_RESTORE: 40,
};

describe("the container build file", () => {
  const containerfile = readFileSync(join(packageRoot, "deploy", "container", "Containerfile"), "utf8");
  const installer = readFileSync(join(packageRoot, "scripts", "install-criu.sh"), "utf8");

  it("builds a CRIU 4.2 the installer builds, from the same source tarball", () => {
    const version = /^ARG CRIU_DEBIAN_VERSION=(\S+)$/m.exec(containerfile)?.[1] ?? "";
    expect(version).toMatch(/^4\.2\./);
    expect(/^versions=\(([^)]*)\)/m.exec(installer)?.[1]).toContain(`"${version}"`);
    // The tarball the installer fetched here has the digest the build checks.
    const tarball = join(packageRoot, ".criu", "src", `criu_${version.replace(/-[^-]*$/, "")}.orig.tar.xz`);
    if (existsSync(tarball)) {
      const digest = createHash("sha256").update(readFileSync(tarball)).digest("hex");
      expect(containerfile).toContain(`ARG CRIU_ORIG_SHA256=${digest}`);
    }
  });

  it("installs every build dependency the installer installs", () => {
    const deps = /need_pkgs (build-essential(?:[^\n\\]|\\\n)*)/.exec(installer)?.[1] ?? "";
    const names = deps.replaceAll("\\\n", " ").split(/\s+/).filter(Boolean);
    expect(names.length).toBeGreaterThan(10);
    const buildStage = containerfile.slice(0, containerfile.indexOf("FROM node:"));
    for (const name of names.filter((n) => !["iproute2", "iptables"].includes(n))) {
      expect(buildStage).toMatch(new RegExp(`\\s${name.replace(/[.+]/g, "\\$&")}(\\s|$)`));
    }
    // The tools CRIU runs at dump and restore time are in the image that runs it.
    expect(containerfile.slice(containerfile.lastIndexOf("FROM "))).toMatch(/iptables iproute2/);
  });
});
