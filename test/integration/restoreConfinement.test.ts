// Security claim 27 (docs/security.md): a restore on behalf of a caller who is not an administrator
// re-creates only what the restored processes could have opened themselves. CRIU restores as root
// and re-opens files by their recorded paths: a path swapped for a symlink after the dump would
// otherwise hand the restored process whatever file the caller points it at.
//
// The workloads run as root without any capability (an empty bounding set): the one kind of
// process this host's CRIU can dump (it cannot dump other users' processes) that the kernel still
// holds to file permissions. Real gRPC, real CRIU, real processes.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GetCheckpointResponse } from "../../gen/criu/gateway/v1/gateway.js";
import {
  call,
  dumpWith,
  failure,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { type Counter, waitFor } from "../support/workload.js";

const NOBODY = 65534;

/** Root on the unix socket, but not an administrator: its restores are confined. */
const CONFINED = {
  grants: [
    {
      name: "operator",
      identities: [{ unix_uid: 0 }],
      rpcs: ["Dump", "Restore", "GetCheckpoint"],
      processes: { uids: [0] },
      checkpoints: { read: ["*"], write: ["*"] },
    },
  ],
};
const ADMIN = { grants: [{ name: "root", identities: [{ unix_uid: 0 }], admin: true }] };

let gw: TestGateway;
let policyFile: string;
const processes = new TestProcesses();

async function usePolicy(doc: unknown): Promise<void> {
  writeFileSync(policyFile, JSON.stringify(doc));
  expect((await gw.gateway.reload()).policy).toBe("reloaded");
}

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    policyFile = join(dir, "policy.json");
    writeFileSync(policyFile, JSON.stringify(CONFINED));
    return { policyFile };
  });
});

afterAll(async () => {
  await gw.close();
});

afterEach(async () => {
  await usePolicy(CONFINED);
  await processes.stopAll();
  await expectNothingLeft(gw);
});

/** A file of `bytes` bytes with this owner and mode. */
function file(name: string, mode: number, owner = 0, bytes = 64): string {
  const path = join(gw.dir, name);
  writeFileSync(path, "x".repeat(bytes));
  chmodSync(path, mode);
  chownSync(path, owner, owner);
  return path;
}

/**
 * A counter without capabilities whose `setup` (Python) first makes sure it cannot open `secret`
 * itself: otherwise a refusal would prove nothing.
 */
function caplessCounter(name: string, secret: string, setup: string): Promise<Counter> {
  return processes.counter(gw.dir, name, {
    capabilities: "none",
    setup: `
try:
    open(${JSON.stringify(secret)}, "rb")
    sys.exit("this process can open the secret itself")
except PermissionError:
    pass
${setup}`,
  });
}

/** Dumps the counter (which then ends) and puts a symlink to `target` where `path` was. */
async function dumpAndSwap(id: string, c: Counter, path: string, target: string): Promise<void> {
  await dumpWith(gw.client, id, { pid: c.pid });
  await c.exited;
  unlinkSync(path);
  symlinkSync(target, path);
}

/** The restore is refused with `message`; the re-created process is gone; the checkpoint stays. */
async function expectRestoreRefused(id: string, pid: number, message: RegExp): Promise<void> {
  const err = await failure(restoreWith(gw.client, id));
  expect(status[err.code], err.details).toBe("PERMISSION_DENIED");
  expect(err.details).toMatch(message);
  await waitFor(() => !existsSync(`/proc/${pid}`), `the refused restore's process ${pid} to be gone`);
  const kept = await call<GetCheckpointResponse>((cb) => gw.client.getCheckpoint({ checkpointId: id }, cb));
  expect(kept.checkpoint?.checkpointId).toBe(id);
}

/** What CRIU gives the process when nothing checks: an administrator's restore of the same images. */
async function adminRestore(id: string): Promise<number> {
  await usePolicy(ADMIN);
  return processes.restored((await restoreWith(gw.client, id)).pid);
}

function descriptorTargets(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return "";
    }
  });
}

describe("a confined restore holds only what its processes could have opened (claim 27)", () => {
  it("restores a process without capabilities whose files are its own, which counts on", async () => {
    const own = file("own.dat", 0o600);
    const c = await caplessCounter(
      "plain",
      file("plain-secret.dat", 0o600, NOBODY),
      `
import mmap
held = os.open(${JSON.stringify(own)}, os.O_RDWR)
mapped = mmap.mmap(held, 0)
`,
    );
    await dumpWith(gw.client, "plain", { pid: c.pid });
    await c.exited;
    const res = await restoreWith(gw.client, "plain");
    processes.restored(res.pid);
    expect(descriptorTargets(res.pid)).toContain(own);
    const now = c.read();
    await waitFor(() => c.read() > now, "the restored counter to count on");
    expect(gw.audit.findLast((r) => r.rpc === "Restore")).toMatchObject({ grant: "operator", result: "OK" });
  });

  it("refuses a descriptor its process could not have opened, which CRIU opened through a symlink", async () => {
    const held = file("held.dat", 0o600);
    const secret = file("secret.dat", 0o600, NOBODY);
    const c = await caplessCounter("fd", secret, `held = os.open(${JSON.stringify(held)}, os.O_RDWR)`);
    await dumpAndSwap("fd", c, held, secret);
    await expectRestoreRefused(
      "fd",
      c.pid,
      new RegExp(
        `descriptor \\d+ on ${secret}, which its recorded credentials \\(uid 0, gid 0, no capabilities\\) may not read and write it`,
      ),
    );
    // The same images restored by an administrator: CRIU hands the process the secret.
    expect(descriptorTargets(await adminRestore("fd"))).toContain(secret);
  });

  it("refuses a shared writable mapping of a file its process could not have opened", async () => {
    const held = file("mapped.dat", 0o600);
    const secret = file("mapped-secret.dat", 0o600, NOBODY);
    const c = await caplessCounter(
      "mapping",
      secret,
      `
import mmap
with open(${JSON.stringify(held)}, "r+b") as f:
    mapped = mmap.mmap(f.fileno(), 0)
`,
    );
    await dumpAndSwap("mapping", c, held, secret);
    await expectRestoreRefused("mapping", c.pid, new RegExp(`a shared writable mapping of ${secret}, which`));
  });

  it("refuses a file in a directory its process could not search", async () => {
    const locked = join(gw.dir, "locked");
    mkdirSync(locked, { mode: 0o700 });
    chownSync(locked, NOBODY, NOBODY);
    const inside = join(locked, "inside.dat");
    writeFileSync(inside, "x".repeat(64), { mode: 0o644 });
    const held = file("readable.dat", 0o644);
    const c = await caplessCounter("search", inside, `held = os.open(${JSON.stringify(held)}, os.O_RDONLY)`);
    await dumpAndSwap("search", c, held, inside);
    await expectRestoreRefused("search", c.pid, new RegExp(`${inside}, which lies under ${locked}, which`));
  });

  it("refuses, before CRIU starts, a checkpoint holding a unix socket bound to a path", async () => {
    const path = join(gw.dir, "listening.sock");
    const c = await processes.counter(gw.dir, "socket", {
      setup: `
import socket
listener = socket.socket(socket.AF_UNIX)
listener.bind(${JSON.stringify(path)})
listener.listen(1)
`,
    });
    await dumpWith(gw.client, "socket", { pid: c.pid });
    await c.exited;
    const err = await failure(restoreWith(gw.client, "socket"));
    expect(status[err.code]).toBe("PERMISSION_DENIED");
    expect(err.details).toContain(`holds a unix socket bound to ${path}: CRIU would remove`);
    // CRIU never ran: it would have written its restore log.
    expect(existsSync(join(gw.imagesRoot, "socket", "restore.log"))).toBe(false);
    // An administrator may: CRIU replaces the socket file and the process listens again.
    const pid = await adminRestore("socket");
    expect(descriptorTargets(pid).some((t) => t.startsWith("socket:"))).toBe(true);
  });
});
