// SwrkWorker against a scripted fake `criu swrk` (test/support/fake-criu.mjs) for the faults, and
// against the real CRIU for the protocol facts. Every worker must end reaped: afterEach fails the
// test if any process it spawned still exists.
import { existsSync, fstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import {
  type ExchangeOptions,
  type NotifyEvent,
  SwrkWorker,
  type SwrkWorkerOptions,
  WorkerFailure,
} from "../../src/criu/swrkWorker.js";
import { type CriuReq, CriuReqType } from "../../src/criu/wire.js";
import { packageRoot } from "../../src/packageRoot.js";
import {
  type FakeCriuOptions,
  type FakeLogEntry,
  type FakeScenario,
  fakeCriu,
  fakeCriuScript,
  removeFakeCriuDirs,
} from "../support/fakeCriu.js";

const spawned = new Set<number>();
const reaped = new Set<number>();
const workers: SwrkWorker[] = [];

function start(criuBin: string, options: Partial<SwrkWorkerOptions> = {}): SwrkWorker {
  const worker = SwrkWorker.start({
    criuBin,
    ...options,
    onSpawn: (pid) => spawned.add(pid),
    onReaped: (pid) => reaped.add(pid),
  });
  workers.push(worker);
  return worker;
}

function startFake(scenario: FakeScenario, options: FakeCriuOptions & Partial<SwrkWorkerOptions> = {}) {
  const fake = fakeCriu(scenario, options);
  return { fake, worker: start(fake.bin, options) };
}

afterEach(async () => {
  const leaked = [...spawned].filter((pid) => existsSync(`/proc/${pid}`));
  // Clean up either way, so one leak does not cascade into the next test.
  await Promise.all(workers.splice(0).map((worker) => worker.kill()));
  const unreported = [...spawned].filter((pid) => !reaped.has(pid));
  spawned.clear();
  reaped.clear();
  expect(leaked, "worker processes still running after the test").toEqual([]);
  expect(unreported, "workers whose onReaped never came").toEqual([]);
});

afterAll(() => {
  removeFakeCriuDirs();
});

/** Waits for the worker's exit and checks the process is gone from /proc (reaped, not a zombie). */
async function reapedExit(worker: SwrkWorker) {
  const exit = await worker.exited;
  expect(worker.pid).toBeTypeOf("number");
  expect(existsSync(`/proc/${worker.pid}`)).toBe(false);
  return exit;
}

async function failureOf(promise: Promise<unknown>): Promise<WorkerFailure> {
  const error = await promise.then(
    (value) => {
      throw new Error(`expected a WorkerFailure, got an answer: ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(WorkerFailure);
  return error as WorkerFailure;
}

/**
 * Whether `fd` is open on `path`. Checked right after the exchange: a closed number may be reused
 * at any time, so "closed" means EBADF or another file.
 */
function refersTo(fd: number, path: string): boolean {
  const want = statSync(path);
  try {
    const got = fstatSync(fd);
    return got.ino === want.ino && got.dev === want.dev;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EBADF") return false;
    throw error;
  }
}

const version: CriuReq = { type: CriuReqType.VERSION };
const dump: CriuReq = { type: CriuReqType.DUMP };

describe("against the fake criu", () => {
  test("ok: answers several requests on one worker; close() lets it exit by itself", async () => {
    const { fake, worker } = startFake("ok");
    const first = await worker.request(version);
    expect(first).toMatchObject({ type: CriuReqType.VERSION, success: true, version: { majorNumber: 4 } });
    const second = await worker.request({ type: CriuReqType.FEATURE_CHECK, features: { memTrack: true } });
    expect(second).toMatchObject({ type: CriuReqType.FEATURE_CHECK, success: true });
    expect(await worker.close()).toEqual({ code: 0, signal: null });
    await reapedExit(worker);
    expect(fake.log().filter((e) => e.event === "request")).toEqual([
      { event: "request", type: CriuReqType.VERSION, keepOpen: false },
      { event: "request", type: CriuReqType.FEATURE_CHECK, keepOpen: false },
    ]);
  });

  test("crash: 'ended', saying the worker was killed by SIGSEGV", async () => {
    const { worker } = startFake("crash");
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("ended");
    expect(failure.message).toMatch(/ended before answering VERSION.*killed by SIGSEGV/);
    expect(failure.exit).toEqual({ code: null, signal: "SIGSEGV" });
    expect(await reapedExit(worker)).toEqual({ code: null, signal: "SIGSEGV" });
  });

  test("a request after the worker ended fails as 'ended' too", async () => {
    const { worker } = startFake("crash");
    await failureOf(worker.request(version));
    await reapedExit(worker);
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("ended");
    expect(failure.message).toMatch(/VERSION/);
  });

  test("exit-silently: 'ended' with the exit status and what it printed on stderr", async () => {
    const { worker } = startFake("exit-silently");
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("ended");
    expect(failure.message).toMatch(/ended before answering VERSION \(exit status 1\)/);
    expect(failure.exit).toEqual({ code: 1, signal: null });
    expect(failure.outputTail).toContain("cannot serve this request");
    await reapedExit(worker);
  });

  test.each(["garbage", "truncated"] as const)(
    "%s: 'protocol', a malformed answer; the worker is killed",
    async (scenario) => {
      const { fake, worker } = startFake(scenario);
      const failure = await failureOf(worker.request(version));
      expect(failure.kind).toBe("protocol");
      expect(failure.message).toMatch(/answered VERSION with a malformed message/);
      expect(failure.cause).toBeInstanceOf(Error);
      // The fake would wait for more requests forever: only the worker's SIGKILL ends it.
      expect(await reapedExit(worker)).toEqual({ code: null, signal: "SIGKILL" });
      expect(fake.log()).toContainEqual({ event: "request", type: CriuReqType.VERSION, keepOpen: false });
    },
  );

  test("wrong-type: 'protocol', naming what was asked and what came back", async () => {
    const { worker } = startFake("wrong-type");
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("protocol");
    expect(failure.message).toMatch(/answered VERSION with a DUMP response/);
    expect(await reapedExit(worker)).toEqual({ code: null, signal: "SIGKILL" });
  });

  test("error-answer: CRIU's EMPTY-typed failure is an answer, not a WorkerFailure", async () => {
    const { worker } = startFake("error-answer");
    const resp = await worker.request(version);
    expect(resp).toEqual({ type: CriuReqType.EMPTY, success: false, crErrmsg: "Invalid req" });
    expect(await worker.close()).toEqual({ code: 0, signal: null });
    await reapedExit(worker);
  });

  test("slow + abort (kill): rejects as 'aborted' and the worker is SIGKILLed and reaped", async () => {
    const { worker } = startFake("slow");
    const controller = new AbortController();
    const pending = worker.request(version, { signal: controller.signal, abortMode: "kill" });
    controller.abort();
    const failure = await failureOf(pending);
    expect(failure.kind).toBe("aborted");
    expect(failure.message).toMatch(/VERSION cancelled/);
    // The fake ignores SIGTERM and end-of-stream: only SIGKILL can have ended it.
    expect(await reapedExit(worker)).toEqual({ code: null, signal: "SIGKILL" });
  });

  test("slow + a signal aborted beforehand: nothing is sent; close() still ends the worker", async () => {
    const { fake, worker } = startFake("slow", { exitGraceMs: 100 });
    const failure = await failureOf(worker.request(version, { signal: AbortSignal.abort() }));
    expect(failure.kind).toBe("aborted");
    expect(failure.message).toMatch(/before it was sent/);
    expect(await worker.close()).toEqual({ code: null, signal: "SIGKILL" });
    await reapedExit(worker);
    expect(fake.log().filter((e) => e.event === "request")).toEqual([]);
  });

  test("slow + abort (veto) with no callback coming: killed after vetoGraceMs, 'aborted'", async () => {
    const { worker } = startFake("slow");
    const controller = new AbortController();
    const pending = worker.request(dump, { signal: controller.signal, abortMode: "veto", vetoGraceMs: 50 });
    controller.abort();
    const failure = await failureOf(pending);
    expect(failure.kind).toBe("aborted");
    expect(await reapedExit(worker)).toEqual({ code: null, signal: "SIGKILL" });
  });

  test("ignore-eof: close() kills a worker that outlives end-of-stream, after exitGraceMs", async () => {
    const { fake, worker } = startFake("ignore-eof", { exitGraceMs: 100 });
    expect(await worker.request(version)).toMatchObject({ success: true });
    expect(await worker.close()).toEqual({ code: null, signal: "SIGKILL" });
    await reapedExit(worker);
    // (Whether the fake logged the end of the stream before the kill depends on timing: not checked.)
    expect(fake.log()[0]).toEqual({ event: "request", type: CriuReqType.VERSION, keepOpen: false });
  });

  describe("notify", () => {
    const answers = (entries: FakeLogEntry[]) =>
      entries.filter((e) => e.event === "notify-answer").map((e) => [e.script, e.notifySuccess]);

    test("without a handler every callback is answered with success and the DUMP succeeds", async () => {
      const { fake, worker } = startFake("notify");
      const resp = await worker.request(dump);
      expect(resp).toMatchObject({ type: CriuReqType.DUMP, success: true });
      expect(answers(fake.log())).toEqual([
        ["pre-dump", true],
        ["network-lock", true],
        ["post-dump", true],
      ]);
      expect(await worker.close()).toEqual({ code: 0, signal: null });
      await reapedExit(worker);
    });

    test("a handler answering false on post-dump fails the DUMP; the fake saw notify_success=false", async () => {
      const { fake, worker } = startFake("notify");
      const seen: NotifyEvent[] = [];
      const resp = await worker.request(dump, {
        onNotify: (event) => {
          seen.push({ ...event, fds: [...event.fds] });
          return event.script !== "post-dump";
        },
      });
      expect(resp).toMatchObject({ type: CriuReqType.DUMP, success: false, crErrno: 125 });
      expect(resp.crErrmsg).toMatch(/post-dump/);
      expect(seen).toEqual([
        { script: "pre-dump", pid: 4242, fds: [] },
        { script: "network-lock", pid: 4242, fds: [] },
        { script: "post-dump", pid: 4242, fds: [] },
      ]);
      expect(answers(fake.log())).toEqual([
        ["pre-dump", true],
        ["network-lock", true],
        ["post-dump", false],
      ]);
      await worker.close();
      await reapedExit(worker);
    });

    test("an async handler's answer is awaited", async () => {
      const { fake, worker } = startFake("notify");
      const resp = await worker.request(dump, {
        onNotify: async (event) => {
          await new Promise((resolve) => setImmediate(resolve));
          return event.script !== "network-lock";
        },
      });
      expect(resp.success).toBe(false);
      expect(answers(fake.log())).toEqual([
        ["pre-dump", true],
        ["network-lock", false],
      ]);
      await worker.close();
      await reapedExit(worker);
    });

    test("abort (veto) during a slow handler: that callback is answered false, whatever the handler says", async () => {
      const { fake, worker } = startFake("notify");
      const controller = new AbortController();
      const scripts: string[] = [];
      const resp = await worker.request(dump, {
        signal: controller.signal,
        abortMode: "veto",
        onNotify: async (event) => {
          scripts.push(event.script);
          controller.abort();
          await new Promise((resolve) => setImmediate(resolve));
          return true;
        },
      });
      // CRIU rolls back and answers the DUMP itself; the worker was not killed.
      expect(resp).toMatchObject({ type: CriuReqType.DUMP, success: false });
      expect(scripts).toEqual(["pre-dump"]);
      expect(answers(fake.log())).toEqual([["pre-dump", false]]);
      expect(await worker.close()).toEqual({ code: 0, signal: null });
      await reapedExit(worker);
    });

    test("abort (veto) between callbacks: the next callback gets false without asking the handler", async () => {
      // The fake waits for SIGUSR1 after pre-dump is answered, so the abort surely lands in between.
      const { fake, worker } = startFake("notify", { pauseAfter: "pre-dump" });
      const controller = new AbortController();
      const scripts: string[] = [];
      const resp = await worker.request(dump, {
        signal: controller.signal,
        abortMode: "veto",
        onNotify: (event) => {
          scripts.push(event.script);
          // Runs after the answer to this callback has been sent.
          setImmediate(() => {
            controller.abort();
            process.kill(worker.pid!, "SIGUSR1");
          });
          return true;
        },
      });
      expect(resp).toMatchObject({ type: CriuReqType.DUMP, success: false });
      expect(scripts).toEqual(["pre-dump"]);
      expect(answers(fake.log())).toEqual([
        ["pre-dump", true],
        ["network-lock", false],
      ]);
      expect(await worker.close()).toEqual({ code: 0, signal: null });
      await reapedExit(worker);
    });

    test("notify-fd: the handler sees the passed fd; it is closed once the handler returns", async () => {
      const { fake, worker } = startFake("notify-fd");
      const passed: number[] = [];
      const resp = await worker.request(
        { type: CriuReqType.RESTORE },
        {
          onNotify: (event) => {
            expect(event.script).toBe("orphan-pts-master");
            expect(event.fds).toHaveLength(1);
            passed.push(...event.fds);
            // The fd refers to the file the fake opened (its own script), open in this process.
            expect(refersTo(event.fds[0]!, fakeCriuScript)).toBe(true);
            return true;
          },
        },
      );
      expect(passed).toHaveLength(1);
      expect(refersTo(passed[0]!, fakeCriuScript), "the NOTIFY's fd is still open after the handler").toBe(
        false,
      );
      expect(resp).toMatchObject({ type: CriuReqType.RESTORE, success: true, restore: { pid: 4242 } });
      expect(answers(fake.log())).toEqual([["orphan-pts-master", true]]);
      await worker.close();
      await reapedExit(worker);
    });

    test("notify-fd: the fd is closed even when the handler throws", async () => {
      const { worker } = startFake("notify-fd");
      let fd = -1;
      const pending = worker.request(
        { type: CriuReqType.RESTORE },
        {
          onNotify: (event) => {
            fd = event.fds[0]!;
            throw new Error("handler failed");
          },
        },
      );
      await expect(pending).rejects.toThrow("handler failed");
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(refersTo(fd, fakeCriuScript), "the NOTIFY's fd is still open after the handler threw").toBe(
        false,
      );
      await worker.close();
      await reapedExit(worker);
    });
  });

  test("a criu binary that cannot be started: 'spawn', saying why", async () => {
    const worker = start(join(packageRoot, "no-such-dir", "criu"));
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("spawn");
    expect(failure.message).toMatch(/cannot start CRIU: .*ENOENT/);
    expect(await worker.exited).toEqual({ code: null, signal: null });
    expect(worker.pid).toBeUndefined();
    await worker.close();
  });
});

describe("against the real criu", () => {
  const criuBin = readFileSync(join(packageRoot, ".criu", "criu-path"), "utf8").trim();

  async function oneRequest(req: CriuReq, options?: ExchangeOptions) {
    const worker = start(criuBin);
    const resp = await worker.request(req, options);
    const exit = await worker.close();
    await reapedExit(worker);
    return { resp, exit, worker };
  }

  test("VERSION: CRIU 4 or later; the worker exits by itself once the socket closes", async () => {
    const { resp, exit } = await oneRequest(version);
    expect(resp.type).toBe(CriuReqType.VERSION);
    expect(resp.success).toBe(true);
    expect(resp.version?.majorNumber).toBeGreaterThanOrEqual(4);
    expect(resp.version?.minorNumber).toBeTypeOf("number");
    expect(exit).toEqual({ code: 0, signal: null });
  });

  test("FEATURE_CHECK: answers each feature asked about", async () => {
    const { resp, exit } = await oneRequest({
      type: CriuReqType.FEATURE_CHECK,
      features: { memTrack: true, lazyPages: true, pidfdStore: true },
    });
    expect(resp.type).toBe(CriuReqType.FEATURE_CHECK);
    expect(resp.success).toBe(true);
    expect(resp.features).toEqual({
      memTrack: expect.any(Boolean),
      lazyPages: expect.any(Boolean),
      pidfdStore: expect.any(Boolean),
    });
    expect(exit).toEqual({ code: 0, signal: null });
  });

  test("keep_open: a second VERSION on the same worker is answered", async () => {
    const worker = start(criuBin);
    const first = await worker.request({ type: CriuReqType.VERSION, keepOpen: true });
    const second = await worker.request(version);
    expect(first).toMatchObject({ type: CriuReqType.VERSION, success: true });
    expect(second).toEqual(first);
    expect(await worker.close()).toEqual({ code: 0, signal: null });
    await reapedExit(worker);
  });

  test("keep_open is refused, before anything is sent, for a request after which CRIU would exit unanswered", async () => {
    const worker = start(criuBin);
    const failure = await failureOf(worker.request({ type: CriuReqType.CHECK, keepOpen: true }));
    expect(failure.kind).toBe("protocol");
    expect(failure.message).toContain("does not keep a worker open after CHECK");
    // Nothing reached CRIU: the worker still answers.
    expect(await worker.request(version)).toMatchObject({ success: true });
    await reapedExit(worker);
  });

  test("without keep_open CRIU exits after one answer: a second request fails as 'ended'", async () => {
    const worker = start(criuBin);
    expect(await worker.request(version)).toMatchObject({ success: true });
    const failure = await failureOf(worker.request(version));
    expect(failure.kind).toBe("ended");
    expect(failure.message).toMatch(/VERSION/);
    expect(await reapedExit(worker)).toEqual({ code: 0, signal: null });
  });

  test("CHECK without opts: a well-formed answer of the same type", async () => {
    const { resp, exit } = await oneRequest({ type: CriuReqType.CHECK });
    expect(resp.type).toBe(CriuReqType.CHECK);
    expect(resp.success).toBeTypeOf("boolean");
    expect(exit.signal).toBeNull();
  });

  test("an EMPTY request: CRIU's error answer, or a clean 'ended'", async () => {
    const worker = start(criuBin);
    const outcome = await worker.request({ type: CriuReqType.EMPTY }).then(
      (resp) => ({ resp }),
      (error: unknown) => ({ error }),
    );
    if ("resp" in outcome) {
      // CRIU 4.1 answers with send_criu_err: type EMPTY, success false.
      expect(outcome.resp.type).toBe(CriuReqType.EMPTY);
      expect(outcome.resp.success).toBe(false);
    } else {
      expect(outcome.error).toBeInstanceOf(WorkerFailure);
      expect((outcome.error as WorkerFailure).kind).toBe("ended");
    }
    await worker.close();
    const exit = await reapedExit(worker);
    expect(exit.signal).toBeNull();
  });
});
