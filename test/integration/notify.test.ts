// CRIU's action-script callbacks driven by a remote caller over CriuService.Session, and the
// Subscribe stream that observers follow. Real CRIU, real processes.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CriuOptions,
  CriuServiceClient,
  type Event,
  OperationKind,
  type SubscribeResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { call, startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { rawSubscriber } from "../support/rawSubscriber.js";
import { runSession } from "../support/session.js";
import { type Counter, isAlive, startCounter, waitFor } from "../support/workload.js";

// What CRIU 4.x emits, read from its source: cr-dump.c runs pre-dump, then (after
// network_lock, which runs network-lock only for a tree in its own net namespace)
// rpc_query_external_files, then post-dump; cr-restore.c runs pre-restore, setup-namespaces,
// post-setup-namespaces, post-restore, pre-resume, post-resume.
const DUMP_CALLBACKS = ["pre-dump", "query-ext-files", "post-dump"];
// setup-namespaces and post-setup-namespaces come only for a tree with namespaces of its own
// (cr-restore.c skips them when root_ns_mask is empty), which these test processes do not have;
// workloads/namespaces.test.ts has a tree that does, with network-lock and network-unlock.
const RESTORE_CALLBACKS = ["pre-restore", "post-restore", "pre-resume", "post-resume"];

let gw: TestGateway;
const processes = new TestProcesses();

beforeAll(async () => {
  gw = await startTestGateway({ callbackTimeoutMs: 30_000 });
});

afterAll(async () => {
  await gw.close();
});

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(gw, { waitForWorkers: true });
});

function counter(name: string): Promise<Counter> {
  return processes.counter(gw.dir, name);
}

function dumpStart(id: string, pid: number, extra: Partial<CriuOptions> = {}) {
  return {
    dump: {
      checkpointId: id,
      parentCheckpointId: "",
      options: CriuOptions.fromPartial({ pid, notifyScripts: true, ...extra }),
    },
    callbackTimeoutMs: 0,
  };
}

function restoreStart(id: string) {
  return {
    restore: { checkpointId: id, options: CriuOptions.fromPartial({ notifyScripts: true }) },
    callbackTimeoutMs: 0,
  };
}

describe("notify callbacks on a Session", () => {
  it("delivers every callback of a dump and a restore in CRIU's order, and the results", async () => {
    const c = await counter("order");
    const dumped = await runSession(gw.client, dumpStart("order", c.pid));
    expect(dumped.error).toBeUndefined();
    expect(dumped.operationId).toMatch(/^op-/);
    expect(dumped.callbacks.map((cb) => cb.script)).toEqual(DUMP_CALLBACKS);
    expect(dumped.callbacks.map((cb) => cb.sequence)).toEqual([1, 2, 3]);
    expect(dumped.callbacks.every((cb) => cb.operationId === dumped.operationId)).toBe(true);
    expect(dumped.result?.dumpResult?.checkpoint?.checkpointId).toBe("order");
    await c.exited;
    const atDump = c.read();

    const restored = await runSession(gw.client, restoreStart("order"));
    expect(restored.error).toBeUndefined();
    expect(restored.callbacks.map((cb) => cb.script)).toEqual(RESTORE_CALLBACKS);
    const pid = restored.result?.restoreResult?.pid ?? 0;
    processes.restored(pid);
    expect(pid).toBe(c.pid);
    await waitFor(() => c.read() > atDump, "the restored counter to count on");
  });

  it("a failure answered at post-dump fails the dump: the process runs on, nothing is published", async () => {
    const c = await counter("veto-post-dump");
    const out = await runSession(gw.client, dumpStart("vetoed", c.pid), (cb) => ({
      success: cb.script !== "post-dump",
    }));
    expect(out.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(out.callbacks.map((cb) => cb.script)).toEqual(DUMP_CALLBACKS);
    expect(existsSync(join(gw.imagesRoot, "vetoed"))).toBe(false);
    const now = c.read();
    await waitFor(() => c.read() > now, "the process to run on after the veto");
  });

  it("a failure answered at post-restore aborts the restore and leaves no restored process", async () => {
    const c = await counter("veto-post-restore");
    const dumped = await runSession(gw.client, dumpStart("to-veto", c.pid));
    expect(dumped.error).toBeUndefined();
    await c.exited;
    const out = await runSession(gw.client, restoreStart("to-veto"), (cb) => ({
      success: cb.script !== "post-restore",
    }));
    expect(out.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(out.callbacks.map((cb) => cb.script)).toEqual(["pre-restore", "post-restore"]);
    // CRIU killed what it had restored (with the dumped pid); wait until PID 1 has reaped it.
    await waitFor(() => !existsSync(`/proc/${c.pid}`), "the half-restored process to be gone");
    // The checkpoint is intact: a restore without the veto works.
    const again = await runSession(gw.client, restoreStart("to-veto"));
    expect(again.error).toBeUndefined();
    processes.restored(again.result?.restoreResult?.pid ?? 0);
  });

  it("a callback left unanswered times out as failure: the process runs on", async () => {
    const quick = await startTestGateway({ callbackTimeoutMs: 300 });
    try {
      const c = await startCounter(quick.dir, "silent");
      processes.adopt(c);
      const out = await runSession(quick.client, dumpStart("silent", c.pid), (cb) =>
        cb.script === "post-dump" ? "silent" : { success: true },
      );
      expect(out.error?.code).toBe(status.FAILED_PRECONDITION);
      expect(out.callbacks.at(-1)?.script).toBe("post-dump");
      expect(out.callbacks.at(-1)?.timeoutMs).toBe(300);
      expect(existsSync(join(quick.imagesRoot, "silent"))).toBe(false);
      const now = c.read();
      await waitFor(() => c.read() > now, "the process to run on after the timeout");
      expect(quick.gateway.workerPids()).toEqual([]);
    } finally {
      await processes.stopCounters();
      await quick.close();
    }
  });

  it("a caller that cancels mid-dump leaves the process running and the worker reaped", async () => {
    const c = await counter("cancel");
    const seen: Event[] = [];
    const sub = gw.client.subscribe({ kinds: [], pid: c.pid, checkpointId: "" });
    sub.on("data", (r: { event?: Event }) => {
      if (r.event) seen.push(r.event);
    });
    sub.on("error", () => {});
    await waitFor(() => gw.gateway.subscriberCount() > 0, "the subscription to open");
    const out = await runSession(gw.client, dumpStart("cancelled", c.pid), (cb) =>
      cb.script === "query-ext-files" ? "cancel" : { success: true },
    );
    expect(out.error?.code).toBe(status.CANCELLED);
    // Observers are told what ended it: the cancellation, not CRIU's failure after the veto.
    await waitFor(() => seen.some((e) => e.finished), "the finished event");
    expect(seen.find((e) => e.finished)?.finished?.code).toBe(status.CANCELLED);
    sub.cancel();
    await waitFor(() => gw.gateway.workerPids().length === 0, "the worker to be reaped");
    expect(existsSync(join(gw.imagesRoot, "cancelled"))).toBe(false);
    expect(isAlive(c.pid)).toBe(true);
    const now = c.read();
    await waitFor(() => c.read() > now, "the process to run on after the cancellation");
  });

  it("answers for the caller when it did not ask for callbacks", async () => {
    const c = await counter("no-notify");
    const out = await runSession(gw.client, {
      dump: {
        checkpointId: "quiet",
        parentCheckpointId: "",
        options: CriuOptions.fromPartial({ pid: c.pid, leaveRunning: true }),
      },
      callbackTimeoutMs: 0,
    });
    expect(out.error).toBeUndefined();
    expect(out.callbacks).toEqual([]);
    expect(out.result?.dumpResult?.checkpoint?.checkpointId).toBe("quiet");
  });

  it("rejects a session that does not start with a start message", async () => {
    const out = await new Promise<{ code: number; details: string }>((resolve) => {
      const call = gw.client.session();
      call.on("error", (err: { code: number; details: string }) => resolve(err));
      call.on("data", () => {});
      call.write({ notifyReply: { sequence: 1, success: true, external: [] } });
    });
    expect(out.code).toBe(status.INVALID_ARGUMENT);
    expect(out.details).toMatch(/starts with a start message/);
  });
});

describe("Subscribe", () => {
  function subscribe(client: CriuServiceClient, kinds: OperationKind[] = []) {
    const events: Event[] = [];
    const call = client.subscribe({ kinds, pid: 0, checkpointId: "" });
    call.on("data", (res: SubscribeResponse) => {
      if (res.event) events.push(res.event);
    });
    call.on("error", () => {});
    return { call, events };
  }

  function summary(events: Event[], operationId: string): string[] {
    return events
      .filter((e) => e.operationId === operationId)
      .map((e) => {
        if (e.started) return "started";
        if (e.callback) return `callback ${e.callback.script}`;
        if (e.callbackAnswered)
          return `answered ${e.callbackAnswered.script} ${e.callbackAnswered.answeredBy}`;
        if (e.finished) return `finished ${e.finished.code}`;
        return "?";
      });
  }

  it("shows unary and session operations live, with callbacks and who answered them", async () => {
    const sub = subscribe(gw.client);
    await waitFor(() => gw.gateway.subscriberCount() === 1, "the subscription to be registered");
    const c = await counter("observed");
    const out = await runSession(gw.client, dumpStart("observed", c.pid, { leaveRunning: true }));
    await waitFor(() => summary(sub.events, out.operationId).includes("finished 0"), "the finished event");
    expect(summary(sub.events, out.operationId)).toEqual([
      "started",
      ...DUMP_CALLBACKS.flatMap((s) => [`callback ${s}`, `answered ${s} caller`]),
      "finished 0",
    ]);
    const started = sub.events.find((e) => e.operationId === out.operationId && e.started)?.started;
    expect(started).toEqual(
      expect.objectContaining({
        kind: OperationKind.OPERATION_KIND_DUMP,
        pid: c.pid,
        checkpointId: "observed",
        interactive: true,
      }),
    );
    sub.call.cancel();
  });

  it("keeps 99 subscribers in step with concurrent operations while a stalled one loses events", async () => {
    const small = await startTestGateway({ subscriberBufferEvents: 8 });
    const clients: CriuServiceClient[] = [];
    const stalled = rawSubscriber(small.address.slice("unix:".length));
    try {
      const subs: ReturnType<typeof subscribe>[] = [];
      for (let i = 0; i < 99; i++) {
        const client = new CriuServiceClient(small.address, credentials.createInsecure());
        clients.push(client);
        subs.push(subscribe(client, [OperationKind.OPERATION_KIND_DUMP]));
      }
      // The stalled subscriber takes every event and reads none of them.
      stalled.pause();
      await waitFor(() => small.gateway.subscriberCount() === 100, "all 100 subscriptions to be registered");

      const workers = await Promise.all([0, 1, 2, 3].map((i) => startCounter(small.dir, `many-${i}`)));
      for (const w of workers) processes.adopt(w);
      // Four interactive dumps at once, and a flood of cheap operations (600 VERSIONs, 2 events
      // each) to overrun the stalled subscriber's transport buffers and then its own queue.
      const flood = (async () => {
        for (let round = 0; round < 150; round++) {
          await Promise.all([0, 1, 2, 3].map(() => call((cb) => small.client.version({}, cb))));
        }
      })();
      const outcomes = await Promise.all(
        workers.map((w, i) =>
          runSession(small.client, dumpStart(`many-${i}`, w.pid, { leaveRunning: true })),
        ),
      );
      await flood;
      for (const o of outcomes) expect(o.error).toBeUndefined();
      const expected = [
        "started",
        ...DUMP_CALLBACKS.flatMap((s) => [`callback ${s}`, `answered ${s} caller`]),
        "finished 0",
      ];
      await waitFor(
        () =>
          subs.every((s) =>
            outcomes.every((o) => summary(s.events, o.operationId).length === expected.length),
          ),
        "every subscriber to see every dump event",
      );
      for (const s of subs) {
        for (const o of outcomes) expect(summary(s.events, o.operationId)).toEqual(expected);
        // Filtered to dumps: none of the flood reached them.
        expect(s.events.every((e) => outcomes.some((o) => o.operationId === e.operationId))).toBe(true);
        expect(s.events.some((e) => e.eventsLost)).toBe(false);
      }
      // The operations finished while the stalled subscriber read nothing: it slowed none of them.
      // Now it reads: what fitted, then one marker counting what was dropped, nothing twice.
      stalled.resume();
      const total = outcomes.length * expected.length + 600 * 2;
      const accounted = () =>
        stalled.events.filter((e) => !e.eventsLost).length +
        stalled.events.reduce((n, e) => n + (e.eventsLost?.count ?? 0), 0);
      await waitFor(() => accounted() === total, "the stalled subscriber to account for every event");
      const lost = stalled.events.reduce((n, e) => n + (e.eventsLost?.count ?? 0), 0);
      expect(lost).toBeGreaterThan(0);
      expect(stalled.events.filter((e) => !e.eventsLost).length).toBeLessThan(total);
    } finally {
      stalled.close();
      for (const c of clients) c.close();
      await processes.stopCounters();
      await small.close();
    }
  });
});
