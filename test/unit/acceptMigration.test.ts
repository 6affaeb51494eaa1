// The target's side of a migration without gRPC or CRIU: a source that goes away after the
// restore and before its commit gets the restored tree killed, never left stopped or run.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ImageStore } from "../../src/domain/imageStore.js";
import { acceptMigration } from "../../src/domain/migration/acceptMigration.js";
import type { FromTarget, ToTarget } from "../../src/domain/migration/targetLink.js";
import { isAlive, waitFor } from "../support/workload.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function scenario(after: ToTarget | undefined) {
  const dir = mkdtempSync(join(tmpdir(), "criu-gw-accept-"));
  dirs.push(dir);
  const store = await ImageStore.open(join(dir, "images"));
  // Stands in for the restored tree: a real process, stopped as CRIU's leave_stopped leaves it.
  const restored = spawn("sleep", ["60"], { stdio: "ignore" });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    restored.once("exit", (_c, sig) => resolve(sig)),
  );
  const pid = restored.pid ?? 0;
  process.kill(pid, "SIGSTOP");
  const script: (ToTarget | undefined)[] = [
    {
      kind: "header",
      header: {
        checkpointId: "moving",
        mode: "stop-and-copy",
        restoreOptions: undefined,
        rootPid: 1,
        criuVersion: "4.2",
      },
    },
    { kind: "chunk", chunk: { name: "inventory.img", offset: 0, data: Buffer.from("x") } },
    { kind: "images-end" },
    after,
  ];
  const sent: FromTarget[] = [];
  const outcome = acceptMigration(
    { next: async () => script.shift(), send: async (m) => void sent.push(m) },
    {
      store,
      admit: async () => ({ caller: "test" }),
      restore: async () => ({ pid, statistics: undefined }),
      startLazyPages: () => Promise.reject(new Error("a stop-and-copy migration runs no lazy-pages daemon")),
      holdRefills: () => () => undefined,
    },
  );
  return { outcome, sent, pid, exited, store };
}

describe("acceptMigration", () => {
  it("kills the restored tree when the source ends the call before its commit, and keeps no checkpoint", async () => {
    const { outcome, sent, exited, store } = await scenario(undefined);
    await expect(outcome).rejects.toMatchObject({ code: "CANCELLED" });
    expect(sent.map((m) => m.kind)).toEqual(["restored"]);
    expect(await exited).toBe("SIGKILL");
    expect(await store.list()).toEqual([]);
  });

  it("lets the restored tree run on the commit", async () => {
    const { outcome, sent, pid } = await scenario({ kind: "commit" });
    await outcome;
    expect(sent.map((m) => m.kind)).toEqual(["restored", "running"]);
    const state = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    await waitFor(() => isAlive(pid) && state() !== "T", "the tree to run");
    process.kill(pid, "SIGKILL");
  });
});

describe("acceptMigration, POST_COPY", () => {
  it("refuses a checkpoint id that is taken before starting anything, and holds no refill back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "criu-gw-accept-"));
    dirs.push(dir);
    const store = await ImageStore.open(join(dir, "images"));
    const taken = await store.stage("moving", undefined);
    let held = 0;
    let started = 0;
    const header: ToTarget = {
      kind: "header",
      header: {
        checkpointId: "moving",
        mode: "post-copy",
        restoreOptions: undefined,
        rootPid: 1,
        criuVersion: "4.2",
      },
    };
    const outcome = acceptMigration(
      { next: async () => header, send: async () => undefined },
      {
        store,
        admit: async () => ({ caller: "test" }),
        restore: () => Promise.reject(new Error("no restore may start")),
        startLazyPages: () => {
          started++;
          return Promise.reject(new Error("no daemon may start"));
        },
        holdRefills: () => {
          held++;
          return () => {
            held--;
          };
        },
      },
    );
    await expect(outcome).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    expect(started).toBe(0);
    expect(held).toBe(0);
    await taken.discard();
  });
});
