// docs/security.md claim 19: hostile and malformed requests (more than 10,000, generated from a
// fixed seed) all get a clear status, the gateway stays up, no worker is left, and no file appears
// outside the images root. A real gateway, real CRIU; no request can dump or restore a live
// process (test/support/hostile.ts says why).
import { readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VersionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { call, criuChildren, startTestGateway, type TestGateway } from "../support/gateway.js";
import { generateHostileCases, type HostileCase, hostileEnv } from "../support/hostile.js";

/** Calls in flight at once. */
const CONCURRENCY = 32;
/** A call that takes longer than this is a hang, reported as DEADLINE_EXCEEDED (never accepted). */
const CALL_DEADLINE_MS = 30_000;

interface Outcome {
  code: number;
  message: string;
}

let gw: TestGateway;
let raw: Client;

beforeAll(async () => {
  gw = await startTestGateway();
  raw = new Client(gw.address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
  });
});

afterAll(async () => {
  raw?.close();
  await gw?.close();
});

function options() {
  return { deadline: Date.now() + CALL_DEADLINE_MS };
}

function unary(invoke: (cb: (err: ServiceError | null) => void) => unknown): Promise<Outcome> {
  return new Promise((resolve) => {
    invoke((err) =>
      resolve(err ? { code: err.code, message: err.details } : { code: status.OK, message: "" }),
    );
  });
}

function send(
  c: HostileCase,
  target: { client: TestGateway["client"]; raw: Client } = { client: gw.client, raw },
): Promise<Outcome> {
  const { client, raw } = target;
  const call = c.call;
  switch (call.rpc) {
    case "Version":
      return unary((cb) => client.version({}, new Metadata(), options(), cb));
    case "FeatureCheck":
      return unary((cb) => client.featureCheck({}, new Metadata(), options(), cb));
    case "ListCheckpoints":
      return unary((cb) => client.listCheckpoints({}, new Metadata(), options(), cb));
    case "Check":
      return unary((cb) => client.check(call.request, new Metadata(), options(), cb));
    case "Dump":
      return unary((cb) => client.dump(call.request, new Metadata(), options(), cb));
    case "Restore":
      return unary((cb) => client.restore(call.request, new Metadata(), options(), cb));
    case "GetCheckpoint":
      return unary((cb) => client.getCheckpoint(call.request, new Metadata(), options(), cb));
    case "DeleteCheckpoint":
      return unary((cb) => client.deleteCheckpoint(call.request, new Metadata(), options(), cb));
    case "Raw":
      return unary((cb) =>
        raw.makeUnaryRequest(
          call.path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          call.bytes,
          new Metadata(),
          options(),
          cb,
        ),
      );
    case "Session":
      return new Promise((resolve) => {
        const stream = client.session(new Metadata(), options());
        stream.on("data", () => {});
        stream.on("error", () => {});
        stream.on("status", (s: { code: number; details: string }) =>
          resolve({ code: s.code, message: s.details }),
        );
        for (const m of call.messages) stream.write(m);
        stream.end();
      });
    case "Subscribe":
      return new Promise((resolve) => {
        const stream = client.subscribe(call.request, new Metadata(), options());
        stream.on("data", () => {});
        stream.on("error", () => {});
        stream.on("status", (s: { code: number; details: string }) =>
          resolve({ code: s.code, message: s.details }),
        );
      });
  }
}

async function runAll(cases: HostileCase[], target?: Parameters<typeof send>[1]): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(cases.length);
  let next = 0;
  const lane = async () => {
    while (next < cases.length) {
      const i = next++;
      outcomes[i] = await send(cases[i]!, target);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return outcomes;
}

/** Absolute paths a status message names (a "/" not preceded by a word character or a dot). */
const PATH_IN_TEXT = /(?<![\w.])\/[^\s"'`),;:\]]+/g;

function isControl(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return (
    (c < 0x20 && c !== 0x09 && c !== 0x0a) ||
    (c >= 0x7f && c <= 0x9f) ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}

/** What is wrong with an outcome, or undefined when it is right. */
function problemWith(c: HostileCase, o: Outcome): string | undefined {
  if (!c.accept.has(o.code)) {
    return `status ${status[o.code]} not in {${[...c.accept].map((x) => status[x]).join(", ")}}`;
  }
  if (o.code === status.OK) return undefined;
  if (c.exactMessage !== undefined && o.message !== c.exactMessage) {
    return `message ${JSON.stringify(o.message)}, expected exactly ${JSON.stringify(c.exactMessage)}`;
  }
  if (o.message.trim() === "") return "empty message";
  if (o.message.length > 2_000) return `message of ${o.message.length} characters`;
  // Control characters a request carried are shown escaped, never raw (a terminal would act on them).
  // (C0 controls, DEL, C1 controls, and the bidi overrides that reorder what a reader sees.)
  const control = [...o.message].find(isControl);
  if (control)
    return `raw control character U+${control.codePointAt(0)!.toString(16).padStart(4, "0")} in message`;
  if (/\n\s+at /.test(o.message) || /\bat .*\.(?:ts|js):\d+/.test(o.message)) return "stack trace in message";
  for (const path of o.message.match(PATH_IN_TEXT) ?? []) {
    if (!c.haystack.includes(path)) return `message names a path the request did not: ${path}`;
  }
  return undefined;
}

/** Top-level entries of a directory. */
function entries(dir: string): Set<string> {
  return new Set(readdirSync(dir));
}

/** Everything under a directory, recursively, as relative paths. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();
}

/**
 * Entries that other processes on this host create in /tmp while this file runs, and that the gateway
 * never makes: the temp dirs of this project's other test files (run in parallel by vitest), mktemp's
 * (shell scripts), and the shell tools driving the session. Any other new entry is reported.
 */
const CONCURRENT_ARTEFACTS = [
  /^criu-gw-/,
  /^criu-gateway-/,
  /^reflection-/,
  /^seqpacket-test-/,
  /^fake-criu-/,
  /^tmp\.[A-Za-z0-9]{10}$/,
  /^bash_tool_/,
  /^bash_jobs/,
];

/** Vitest's module runner dumps transformed modules into /tmp/<nanoid>/ssr/ while files run in parallel. */
function isVitestModuleCache(dir: string, name: string): boolean {
  if (dir !== tmpdir() || !/^[A-Za-z0-9_-]{21}$/.test(name)) return false;
  try {
    return readdirSync(join(dir, name)).every((child) => child === "ssr");
  } catch {
    return true; // gone already: not a file left behind
  }
}

describe("hostile and malformed requests (security claim 19)", () => {
  it("all get a clear, expected status; the gateway stays up, reaps every worker and writes nothing outside its root", async () => {
    const env = hostileEnv();
    const cases = generateHostileCases(env);
    expect(cases.length).toBeGreaterThanOrEqual(10_000);

    const watched = [tmpdir(), "/", gw.dir];
    const before = new Map(watched.map((d) => [d, entries(d)]));

    const started = Date.now();
    const outcomes = await runAll(cases);
    const elapsedMs = Date.now() - started;

    const histogram: Record<string, number> = {};
    for (const o of outcomes) {
      const name = status[o.code] ?? String(o.code);
      histogram[name] = (histogram[name] ?? 0) + 1;
    }
    console.log(
      `hostile: ${cases.length} cases in ${(elapsedMs / 1000).toFixed(1)} s (${cases.filter((c) => c.reachesCriu).length} reach CRIU): ${JSON.stringify(histogram)}`,
    );

    // Every case answered as its defects justify, with a message a person can read. Reported by
    // kind of problem: how many cases, which labels, and the first two cases in full.
    const byProblem = new Map<string, { count: number; labels: Set<string>; examples: string[] }>();
    cases.forEach((c, i) => {
      const problem = problemWith(c, outcomes[i]!);
      if (!problem) return;
      const key = problem.replace(/".*"/, "…");
      const entry = byProblem.get(key) ?? { count: 0, labels: new Set<string>(), examples: [] };
      byProblem.set(key, entry);
      entry.count++;
      entry.labels.add(c.label);
      if (entry.examples.length < 2) {
        const shown = JSON.stringify(c.call, (_k, v) =>
          typeof v === "string" && v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v,
        );
        entry.examples.push(
          `#${c.index} ${c.label}: got ${status[outcomes[i]!.code]} ${JSON.stringify(outcomes[i]!.message.slice(0, 300))}; request ${shown.slice(0, 400)}`,
        );
      }
    });
    const problems = [...byProblem].map(
      ([problem, e]) => `${e.count} × ${problem} [${[...e.labels].join(", ")}]\n  ${e.examples.join("\n  ")}`,
    );
    // Soft, so that the checks below still run and report when some cases are answered wrongly.
    expect.soft(problems).toEqual([]);

    // The gateway is still up and answers.
    const v = await call<VersionResponse>((cb) => gw.client.version({}, cb));
    expect(v.majorNumber).toBeGreaterThanOrEqual(4);
    // No worker left, in the gateway's books or among this process's children.
    expect(gw.gateway.workerPids()).toEqual([]);
    expect(criuChildren()).toEqual([]);
    // Nothing was created in the store, not even a temporary directory.
    expect(tree(gw.imagesRoot)).toEqual([]);
    // Nothing new next to it, in /tmp or in /.
    for (const dir of watched) {
      const added = [...entries(dir)].filter(
        (name) =>
          !before.get(dir)!.has(name) &&
          !CONCURRENT_ARTEFACTS.some((p) => p.test(name)) &&
          !isVitestModuleCache(dir, name),
      );
      expect(added, `new entries in ${dir}`).toEqual([]);
    }
  }, 180_000);

  it("from a caller granted only Version, nothing else gets through, however malformed", async () => {
    // The same corpus against a policy that makes root on the unix socket an ordinary caller
    // allowed Version alone: a malformed request must never slip past the grant.
    const narrow = await startTestGateway((dir) => {
      const file = join(dir, "policy.json");
      writeFileSync(
        file,
        JSON.stringify({
          grants: [{ name: "version-only", identities: [{ unix_uid: 0 }], rpcs: ["Version"] }],
        }),
      );
      return { policyFile: file };
    });
    const narrowRaw = new Client(narrow.address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": -1,
    });
    try {
      const cases = generateHostileCases(hostileEnv());
      const outcomes = await runAll(cases, { client: narrow.client, raw: narrowRaw });
      const NOT_A_REQUEST = [status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED, status.UNIMPLEMENTED];
      const wrong: string[] = [];
      cases.forEach((c, i) => {
        const o = outcomes[i]!;
        const isVersion =
          c.call.rpc === "Version" || (c.call.rpc === "Raw" && c.call.path.endsWith("/Version"));
        const ok = isVersion
          ? c.accept.has(o.code)
          : o.code === status.PERMISSION_DENIED || (NOT_A_REQUEST.includes(o.code) && c.accept.has(o.code));
        if (!ok && wrong.length < 5)
          wrong.push(`#${c.index} ${c.label}: ${status[o.code]} ${o.message.slice(0, 200)}`);
      });
      expect(wrong).toEqual([]);
      // Every refusal is audited, and only Version ever succeeded.
      expect(narrow.audit.filter((r) => r.result === "OK" && r.rpc !== "Version")).toEqual([]);
      expect(narrow.audit.filter((r) => r.result === "PERMISSION_DENIED").length).toBeGreaterThan(5_000);
      expect(narrow.gateway.workerPids()).toEqual([]);
      expect(criuChildren()).toEqual([]);
      expect(tree(narrow.imagesRoot)).toEqual([]);
    } finally {
      narrowRaw.close();
      await narrow.close();
    }
  }, 180_000);
});
