// A process dumped by real CRIU on gateway A, pushed to gateway B (over a unix socket, and over
// TCP with mutual TLS, B judging A's certificate by its policy), and restored on B once the
// original is gone: it keeps working, its memory intact.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CriuServiceClient } from "../../gen/criu/gateway/v1/gateway.js";
import { issue, makeCa, pem } from "../support/certs.js";
import { dumpWith, failure, restoreWith, startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { pushAll } from "../support/transfer.js";
import { isAlive, waitFor } from "../support/workload.js";

// `mib` MiB of memory, hashed once at start (into <count file>.before) and again on SIGUSR1
// (into <count file>.after): after a restore, equal hashes mean every page came back.
function memorySetup(mib: number): string {
  return `
import hashlib, signal
buf = bytes(range(256)) * (${mib} * 4096)
def report(suffix):
    with open(path + suffix, "w") as f:
        f.write(hashlib.sha256(buf).hexdigest())
report(".before")
signal.signal(signal.SIGUSR1, lambda *_: report(".after"))
`;
}

/** Asks a restored memory counter to hash its memory again; resolves when it matches. */
async function expectMemoryIntact(pid: number, countFile: string): Promise<void> {
  process.kill(pid, "SIGUSR1");
  const before = readFileSync(`${countFile}.before`, "utf8");
  await waitFor(
    () => readFileSync(`${countFile}.after`, "utf8") === before,
    "the memory's hash after the restore",
    60_000,
  );
}

let a: TestGateway;
let b: TestGateway;
let bTcp: string;
let ops: CriuServiceClient;
const processes = new TestProcesses();

beforeAll(async () => {
  b = await startTestGateway((dir) => {
    const ca = makeCa(dir, "ca");
    issue(dir, ca, "server", "gateway-b", ["DNS:localhost", "IP:127.0.0.1"]);
    const policyFile = join(dir, "policy.json");
    writeFileSync(
      policyFile,
      JSON.stringify({
        grants: [
          { name: "root", identities: [{ unix_uid: 0 }], admin: true },
          // Gateway A may bring checkpoints named from-a*, and do nothing else here.
          {
            name: "gateway-a",
            identities: [{ cert_cn: "gateway-a" }],
            rpcs: ["ImportCheckpoint"],
            checkpoints: { write: ["from-a"] },
          },
          // An operator who may restore anything of anyone, but is no administrator.
          {
            name: "ops",
            identities: [{ cert_cn: "ops" }],
            rpcs: ["Restore", "ImportCheckpoint"],
            processes: { any: true },
            checkpoints: { read: ["*"], write: ["*"] },
          },
        ],
      }),
    );
    return {
      listen: [`unix:${join(dir, "gw.sock")}`, "127.0.0.1:0"],
      tls: { certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key"), clientCaFile: ca.cert },
      policyFile,
    };
  });
  bTcp = b.gateway.addresses[1] ?? "";
  issue(b.dir, { cert: join(b.dir, "ca.pem"), key: join(b.dir, "ca.key") }, "gateway-a", "gateway-a", []);
  issue(b.dir, { cert: join(b.dir, "ca.pem"), key: join(b.dir, "ca.key") }, "ops", "ops", []);
  const opsPem = pem({ cert: join(b.dir, "ops.pem"), key: join(b.dir, "ops.key") });
  ops = new CriuServiceClient(
    bTcp,
    credentials.createSsl(
      pem({ cert: join(b.dir, "ca.pem"), key: join(b.dir, "ca.key") }).cert,
      opsPem.key,
      opsPem.cert,
    ),
  );
  a = await startTestGateway({
    pushTargets: [b.address, bTcp],
    pushTls: {
      caFile: join(b.dir, "ca.pem"),
      certFile: join(b.dir, "gateway-a.pem"),
      keyFile: join(b.dir, "gateway-a.key"),
      serverName: undefined,
    },
  });
});

afterAll(async () => {
  ops?.close();
  await a?.close();
  await b?.close();
});

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(a);
  await expectNothingLeft(b);
});

function memoryCounter(name: string, mib: number) {
  return processes.counter(a.dir, name, { setup: memorySetup(mib) });
}

describe("a process moved between gateways", () => {
  it("dumps a 1 GiB process on A, pushes it to B over a unix socket, and B restores it working", async () => {
    const c = await memoryCounter("big", 1024);
    await dumpWith(a.client, "moving", { pid: c.pid });
    await c.exited;
    const atDump = c.read();
    const pushed = await pushAll(a.client, {
      checkpointId: "moving",
      target: b.address,
      targetCheckpointId: "moved",
    });
    const result = pushed.at(-1)?.result;
    expect(result?.checkpoint?.checkpointId).toBe("moved");
    expect(result?.bytes).toBeGreaterThan(1024 * 1024 * 1024);
    // zstd by default: the pattern shrinks to a fraction on the wire.
    expect(result?.wireBytes).toBeLessThan((result?.bytes ?? 0) / 4);
    // The original is gone: B restores it, and it counts on over its intact memory.
    expect(isAlive(c.pid)).toBe(false);
    const restored = await restoreWith(b.client, "moved");
    processes.restored(restored.pid);
    expect(restored.pid).toBe(c.pid);
    await waitFor(() => c.read() > atDump + 20, "the restored process to count on");
    await expectMemoryIntact(restored.pid, c.file);
  }, 300_000);

  it("pushes over TCP with mutual TLS, B admitting A's certificate by its policy only", async () => {
    const c = await memoryCounter("small", 16);
    await dumpWith(a.client, "tls-src", { pid: c.pid });
    await c.exited;
    const atDump = c.read();
    // B's policy lets A bring only checkpoints named from-a*.
    const refused = await failure(
      pushAll(a.client, { checkpointId: "tls-src", target: bTcp, targetCheckpointId: "elsewhere" }),
    );
    expect(refused.code).toBe(status.PERMISSION_DENIED);
    expect(refused.details).toContain(`target ${bTcp}:`);
    expect(refused.details).toContain("gateway-a");
    const pushed = await pushAll(a.client, {
      checkpointId: "tls-src",
      target: bTcp,
      targetCheckpointId: "from-a-1",
    });
    expect(pushed.at(-1)?.result?.checkpoint?.checkpointId).toBe("from-a-1");
    // Imported images are restored for administrators only, however wide another grant is.
    const denied = await failure(restoreWith(ops, "from-a-1"));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    const restored = await restoreWith(b.client, "from-a-1");
    processes.restored(restored.pid);
    await waitFor(() => c.read() > atDump + 20, "the restored process to count on");
    await expectMemoryIntact(restored.pid, c.file);
  }, 120_000);
});
