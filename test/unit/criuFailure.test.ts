// CRIU's refusals and worker failures become GatewayErrors with a code a caller can act on, and
// CRIU's own words in the detail.
import { describe, expect, test } from "vitest";
import { WorkerFailure } from "../../src/criu/swrkWorker.js";
import { CriuReqType, type CriuResp } from "../../src/criu/wire.js";
import {
  criuRefused,
  type FailureContext,
  lastLines,
  telling,
  workerFailed,
} from "../../src/domain/criuFailure.js";
import { GatewayError } from "../../src/domain/errors.js";

const logTail = ["(00.10) Error (criu/cr-dump.c:2000): Dumping FAILED.", "(00.11) Unlock network"];

function refusal(over: Partial<CriuResp> = {}): CriuResp {
  return { type: CriuReqType.DUMP, success: false, ...over };
}

function context(action: string, over: Partial<FailureContext> = {}): FailureContext {
  return { action, pid: 1234, checkpointId: "web-1", logTail, ...over };
}

describe("criuRefused", () => {
  test("ESRCH (3) is NOT_FOUND: the process is not there", () => {
    const err = criuRefused(refusal({ crErrno: 3, crErrmsg: "No such process" }), context("dump"));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain("dump");
    expect(err.message).toContain("does not exist");
  });

  test("EEXIST (17) on a restore is ALREADY_EXISTS: a pid is taken", () => {
    for (const action of ["restore", "restore checkpoint web-1"]) {
      const err = criuRefused(
        refusal({ type: CriuReqType.RESTORE, crErrno: 17, crErrmsg: "File exists" }),
        context(action),
      );
      expect(err.code).toBe("ALREADY_EXISTS");
      expect(err.message).toContain(action);
      expect(err.message).toMatch(/pid/);
    }
  });

  test("EEXIST (17) on anything but a restore is not ALREADY_EXISTS", () => {
    const err = criuRefused(refusal({ crErrno: 17, crErrmsg: "File exists" }), context("dump"));
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toContain("File exists");
  });

  test("EBADRQC (56) is INVALID_ARGUMENT with CRIU's message", () => {
    const err = criuRefused(
      refusal({ crErrno: 56, crErrmsg: "  unknown option --tcp-whatever\n" }),
      context("dump"),
    );
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain("unknown option --tcp-whatever");
    expect(err.message).toContain("options");
    expect(err.criu?.crErrmsg).toBe("unknown option --tcp-whatever");
  });

  test("ENOTSUP (95) is FAILED_PRECONDITION saying it is not supported", () => {
    const err = criuRefused(refusal({ crErrno: 95, crErrmsg: "no uffd" }), context("lazy restore"));
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toContain("not supported");
    expect(err.message).toContain("lazy restore");
    expect(err.message).toContain("no uffd");
  });

  test.each<[string, Partial<CriuResp>]>([
    ["another errno", { crErrno: 1, crErrmsg: "Operation not permitted" }],
    ["errno 0", { crErrno: 0 }],
    ["no errno at all", {}],
  ])("%s is FAILED_PRECONDITION", (_what, over) => {
    const err = criuRefused(refusal(over), context("dump"));
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toContain("CRIU could not dump");
    if (over.crErrmsg) expect(err.message).toContain(over.crErrmsg);
  });

  test.each([3, 17, 56, 95, 1, undefined])("the detail carries CRIU's answer (errno %s)", (crErrno) => {
    const err = criuRefused(refusal({ crErrno, crErrmsg: " said this " }), context("dump"));
    expect(err.criu).toEqual({
      requestType: "DUMP",
      crErrno: crErrno ?? 0,
      crErrmsg: "said this",
      logTail,
      workerExit: "",
    });
  });

  test("the detail names the request type CRIU answered", () => {
    expect(criuRefused(refusal({ type: CriuReqType.RESTORE }), context("restore")).criu?.requestType).toBe(
      "RESTORE",
    );
    expect(criuRefused(refusal({ type: CriuReqType.PRE_DUMP }), context("pre-dump")).criu?.requestType).toBe(
      "PRE_DUMP",
    );
  });

  test("a harmless first error is passed over for the first telling one in the log", () => {
    const rlimit =
      "Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted";
    const tail = [
      `(00.001) ${rlimit}`,
      "(00.050) 42 has 0 sched policy",
      "(00.050) Error (criu/cr-dump.c:371): Can't get rlimit 0: Operation not permitted",
      "(00.050) Error (criu/cr-dump.c:2111): Dumping FAILED.",
    ];
    const err = criuRefused(
      refusal({ crErrno: 1, crErrmsg: rlimit }),
      context("dump pid 42", { logTail: tail }),
    );
    expect(err.message).toBe(
      "CRIU could not dump pid 42: Error (criu/cr-dump.c:371): Can't get rlimit 0: Operation not permitted. See the log tail in the error details.",
    );
    // CRIU's own words stay in the detail, untouched.
    expect(err.criu?.crErrmsg).toBe(rlimit);
  });

  test("telling: CRIU's errmsg when it is not harmless; never a mere conclusion", () => {
    expect(telling("Error (x.c:1): real trouble", ["(0.1) Error (y.c:2): other"])).toBe(
      "Error (x.c:1): real trouble",
    );
    const only = [
      " 7: Error (criu/cr-restore.c:2320): Restoring FAILED.",
      "Error (criu/cr-restore.c:1262): 7 killed by signal 9: Killed",
    ];
    const harmless =
      "Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted";
    expect(telling(harmless, only)).toBe(harmless);
    expect(telling("", [])).toBe("");
  });

  test("no message says more than CRIU did when it gave no errmsg", () => {
    const err = criuRefused(refusal({ crErrno: 56 }), context("dump"));
    expect(err.message).not.toMatch(/: *$/);
    expect(err.message).not.toContain("undefined");
    expect(err.criu?.crErrmsg).toBe("");
  });
});

describe("workerFailed", () => {
  test.each([
    ["aborted", "CANCELLED"],
    ["spawn", "UNAVAILABLE"],
    ["protocol", "INTERNAL"],
    ["ended", "INTERNAL"],
  ] as const)("%s is %s, with the failure as cause and the request type in the detail", (kind, code) => {
    const failure = new WorkerFailure(kind, `internal-words-${kind}`, { code: 1, signal: null }, "");
    const err = workerFailed(failure, "DUMP", context("dump"));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe(code);
    expect(err.cause).toBe(failure);
    expect(err.criu).toMatchObject({ requestType: "DUMP", crErrno: 0, crErrmsg: "", logTail });
    // The worker's own message is for the gateway's log, not for the caller.
    expect(err.message).not.toContain("internal-words");
  });

  test("aborted says the action was cancelled", () => {
    const err = workerFailed(new WorkerFailure("aborted", "x", undefined, ""), "RESTORE", context("restore"));
    expect(err.message).toBe("the restore was cancelled");
    expect(err.criu?.workerExit).toBe("");
  });

  test("a worker killed by SIGSEGV says so in the message and the detail", () => {
    const failure = new WorkerFailure("ended", "x", { code: null, signal: "SIGSEGV" }, "");
    const err = workerFailed(failure, "DUMP", context("dump"));
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toContain("killed by SIGSEGV");
    expect(err.message).toContain("dump");
    expect(err.criu?.workerExit).toBe("killed by SIGSEGV");
  });

  test("a worker that exited with a status says which", () => {
    const failure = new WorkerFailure("ended", "x", { code: 2, signal: null }, "");
    const err = workerFailed(failure, "DUMP", context("dump"));
    expect(err.message).toContain("exit status 2");
    expect(err.criu?.workerExit).toBe("exit status 2");
  });

  test("a clean exit is no abnormal end: workerExit stays empty", () => {
    const failure = new WorkerFailure("protocol", "x", { code: 0, signal: null }, "");
    expect(workerFailed(failure, "DUMP", context("dump")).criu?.workerExit).toBe("");
  });

  test("without CRIU's log, the detail has the last 20 lines of the worker's output", () => {
    const output = `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n")}\n\n   \n`;
    const failure = new WorkerFailure("spawn", "x", { code: null, signal: null }, output);
    const err = workerFailed(failure, "VERSION", context("get the version", { logTail: [] }));
    expect(err.criu?.logTail).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
    expect(err.criu?.requestType).toBe("VERSION");
  });

  test("CRIU's log, when there is one, wins over the worker's output", () => {
    const failure = new WorkerFailure("ended", "x", { code: 1, signal: null }, "stderr noise");
    expect(workerFailed(failure, "DUMP", context("dump")).criu?.logTail).toEqual(logTail);
  });
});

describe("lastLines", () => {
  test("keeps the last n non-blank lines", () => {
    expect(lastLines("a\n\nb\n  \nc\n", 2)).toEqual(["b", "c"]);
    expect(lastLines("a\nb", 5)).toEqual(["a", "b"]);
    expect(lastLines("", 5)).toEqual([]);
  });

  test("0 lines means none (log-tail-lines may be 0), not all", () => {
    expect(lastLines("a\nb\nc", 0)).toEqual([]);
  });
});
