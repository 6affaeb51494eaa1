// Never lose a process (docs/reliability.md): the gateway killed (SIGKILL) at each moment of a
// dump, then started again on the same store; its CRIU worker killed at CRIU's callbacks. After
// each, the process runs, or it is gone and its checkpoint is listed and restores. The moments are
// reached deterministically: the dying gateway (test/support/dumpThenDie.mjs, the compiled domain
// in a process of its own) kills itself from CRIU's callback or from the dump's phase hook.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  type Checkpoint,
  CheckpointState,
  CriuOptions,
  Durability,
  type ListCheckpointsResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import {
  call,
  criuBin,
  criuChildren,
  dumpWith,
  restoreWith,
  startTestGateway,
  type TestGateway,
} from "../support/gateway.js";
import { TestProcesses } from "../support/processes.js";
import { dumpStart, runSession } from "../support/session.js";
import { type Counter, isAlive, waitFor } from "../support/workload.js";

const processes = new TestProcesses();
const dirs: string[] = [];

afterEach(async () => {
  await processes.stopAll();
  expect(criuChildren()).toEqual([]);
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const dyingGateway = new URL("../support/dumpThenDie.mjs", import.meta.url).pathname;

/**
 * Runs a dump in a gateway process that SIGKILLs itself at `moment`; resolves with its worker's
 * pid (undefined once CRIU has answered: its worker is gone then).
 */
function dumpThenDie(
  root: string,
  pid: number,
  checkpointId: string,
  moment: string,
  durability: "fsync" | "none",
): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [dyingGateway, root, criuBin(), String(pid), checkpointId, moment, durability],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once("exit", (_code, signal) => {
      const worker = /^worker ?(\d*)/m.exec(out);
      if (signal !== "SIGKILL" || !worker) reject(new Error(`the gateway did not die at ${moment}: ${out}`));
      else resolve(worker[1] ? Number(worker[1]) : undefined);
    });
  });
}

async function listed(gw: TestGateway): Promise<Checkpoint[]> {
  return (await call<ListCheckpointsResponse>((cb) => gw.client.listCheckpoints({}, cb))).checkpoints;
}

/** Is the counter counting (after a rollback), as opposed to gone (after a dump that killed it)? */
async function runsOn(p: Counter): Promise<boolean> {
  let gone = false;
  void p.exited.then(() => {
    gone = true;
  });
  const before = p.read();
  await waitFor(() => gone || p.read() > before + 1, "the counter to count on, or to be gone");
  return !gone;
}

describe("the gateway killed during a dump, then started again", () => {
  // moment → [the process runs on, its checkpoint is listed (as unconfirmed), durability]
  const cases: [string, boolean, boolean, "fsync" | "none"][] = [
    // Before the tree is frozen: CRIU loses its gateway and rolls back.
    ["pre-dump", true, false, "fsync"],
    // The tree frozen and written, post-dump not yet answered: CRIU rolls back.
    ["post-dump", true, false, "fsync"],
    // The gateway's records durable, post-dump about to be answered: CRIU still rolls back, but
    // the gateway cannot know that, and keeps what may be the only copy (a duplicate, not a loss).
    ["secured", true, true, "fsync"],
    // CRIU answered: the tree is gone, and only the images hold it.
    ["answered", false, true, "fsync"],
    // With NONE nothing is flushed, but the same records are written in the same order: the page
    // cache outlives the gateway, so a crash of the gateway loses nothing either.
    ["secured", true, true, "none"],
    ["answered", false, true, "none"],
  ];

  it.each(cases)(
    "at %s: the process runs on (%s), or it is listed and restores (%s); durability %s",
    async (moment, runs, kept, durability) => {
      const dir = mkdtempSync(join(tmpdir(), "criu-gw-crash-"));
      dirs.push(dir);
      const root = join(dir, "images");
      const p = await processes.counter(dir, `crash-${moment}-${durability}`);
      const worker = await dumpThenDie(root, p.pid, "crashed", moment, durability);
      // The orphaned worker finishes on its own (rolling back, or not).
      if (worker !== undefined)
        await waitFor(() => !isAlive(worker), "the orphaned CRIU worker to end", 60_000);
      expect(await runsOn(p)).toBe(runs);

      const gw = await startTestGateway({ imagesRoot: root });
      try {
        const found = await listed(gw);
        expect(found.map((c) => [c.checkpointId, c.state, c.durability])).toEqual(
          kept
            ? [
                [
                  "crashed",
                  CheckpointState.CHECKPOINT_STATE_UNCONFIRMED,
                  durability === "none" ? Durability.DURABILITY_NONE : Durability.DURABILITY_FSYNC,
                ],
              ]
            : [],
        );
        expect(readdirSync(root).filter((n) => n.startsWith("."))).toEqual([]);
        if (!runs) {
          const restored = await restoreWith(gw.client, "crashed");
          processes.restored(restored.pid);
          expect(restored.pid).toBe(p.pid);
          const at = p.read();
          await waitFor(() => p.read() > at, "the restored counter to count on");
        }
      } finally {
        await gw.close();
      }
    },
  );
});

describe("the CRIU worker killed during a dump", () => {
  let gw: TestGateway;
  afterEach(async () => {
    await gw?.close();
  });

  it.each(["pre-dump", "post-dump"])("at %s: the process runs on, nothing is lost", async (moment) => {
    gw = await startTestGateway({ callbackTimeoutMs: 60_000 });
    const p = await processes.counter(gw.dir, `worker-${moment}`);
    const outcome = await runSession(gw.client, dumpStart("lost-worker", { pid: p.pid }), (callback) => {
      if (callback.script === moment) for (const w of gw.gateway.workerPids()) process.kill(w, "SIGKILL");
      return { success: true };
    });
    expect(outcome.error).toBeDefined();
    expect(status[outcome.error?.code ?? 0]).not.toBe("OK");
    expect(await runsOn(p)).toBe(true);
    // Answered with success after the worker died, post-dump was committed: what the gateway
    // secured is kept, as unconfirmed, next to the running process.
    const found = await listed(gw);
    expect(found.map((c) => c.state)).toEqual(
      moment === "post-dump" ? [CheckpointState.CHECKPOINT_STATE_UNCONFIRMED] : [],
    );
    expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
  });
});

describe("the CRIU worker killed during a restore", () => {
  let gw: TestGateway;
  afterEach(async () => {
    await gw?.close();
  });

  it("at post-restore, before the tree runs: the half-restored tree is killed, and a restore works again", async () => {
    gw = await startTestGateway({ callbackTimeoutMs: 60_000 });
    const p = await processes.counter(gw.dir, "restore-lost-worker");
    await dumpWith(gw.client, "restore-me", { pid: p.pid });
    await p.exited;
    const atDump = p.read();
    let stuck = 0;
    const outcome = await runSession(
      gw.client,
      {
        restore: { checkpointId: "restore-me", options: CriuOptions.fromPartial({ notifyScripts: true }) },
        callbackTimeoutMs: 0,
      },
      (callback) => {
        if (callback.script === "post-restore") {
          // The tree is re-created and waits in CRIU's restorer for the rest of the restore.
          stuck = callback.pid ?? 0;
          for (const w of gw.gateway.workerPids()) process.kill(w, "SIGKILL");
        }
        return { success: true };
      },
    );
    expect(status[outcome.error?.code ?? 0]).not.toBe("OK");
    expect(stuck).toBe(p.pid);
    // Killed by the gateway; gone once its new parent has reaped it.
    await waitFor(
      () => !existsSync(`/proc/${stuck}`),
      "the half-restored tree to be killed and reaped",
      60_000,
    );
    const restored = await restoreWith(gw.client, "restore-me");
    processes.restored(restored.pid);
    await waitFor(() => p.read() > atDump, "the restored counter to count on");
  });
});
