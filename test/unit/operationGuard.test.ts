// The guard a caller's authorization hands the domain (src/domain/operationGuard.ts): every
// operation that takes options judges them by the caller's option classes, not the gateway's.
// The CRIU binary here cannot start, so an operation that got past its checks says so with
// UNAVAILABLE; one refused by its checks never gets that far.
import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import { createCriuOperations, type OperationContext } from "../../src/domain/criuOperations.js";
import { GatewayError } from "../../src/domain/errors.js";
import { EventBus } from "../../src/domain/eventBus.js";
import { ImageStore } from "../../src/domain/imageStore.js";
import type { OperationGuard } from "../../src/domain/operationGuard.js";

let base: string;
let operations: ReturnType<typeof createCriuOperations>;

beforeEach(async () => {
  base = await fs.mkdtemp(join(tmpdir(), "criu-gateway-guard-"));
  operations = createCriuOperations({
    criuBin: join(base, "no-such-criu"),
    store: await ImageStore.open(join(base, "images")),
    events: new EventBus(16),
    logTailLines: 10,
    vetoGraceMs: 1_000,
    allowedOptionClasses: new Set(["safe", "admin"]),
  });
});

afterEach(async () => {
  await operations.drain();
  await fs.rm(base, { recursive: true, force: true });
});

/** ext_unix_sk is an admin-class option: it lets CRIU leave a socket's peer outside the dump. */
const adminOptions = CriuOptions.fromPartial({ pid: process.ppid, extUnixSk: true });

const safeOnly: OperationGuard = {
  optionClasses: new Set(["safe"]),
  frozenTree: async () => [],
};

async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  throw new Error("the operation succeeded");
}

const everyOperationWithOptions: [string, (ctx: OperationContext) => Promise<unknown>][] = [
  ["Check", (ctx) => operations.check(adminOptions, ctx)],
  [
    "Dump",
    (ctx) =>
      operations.dump({ checkpointId: "c", parentCheckpointId: undefined, options: adminOptions }, ctx),
  ],
  [
    "PreDump",
    (ctx) =>
      operations.preDump({ checkpointId: "c", parentCheckpointId: undefined, options: adminOptions }, ctx),
  ],
  [
    "IterativeDump",
    (ctx) =>
      operations.iterativeDump(
        { checkpointId: "c", parentCheckpointId: undefined, options: adminOptions },
        ctx,
        async () => true,
      ),
  ],
  ["Restore", (ctx) => operations.restore({ checkpointId: "c", options: adminOptions }, ctx)],
  ["CpuinfoDump", (ctx) => operations.cpuinfoDump({ checkpointId: "c", options: adminOptions }, ctx)],
  ["CpuinfoCheck", (ctx) => operations.cpuinfoCheck({ checkpointId: "c", options: adminOptions }, ctx)],
  [
    "StartPageServer",
    (ctx) =>
      operations.startPageServer({ checkpointId: "c", address: "", port: 0, options: adminOptions }, ctx),
  ],
];

describe("a guard's option classes", () => {
  test.each(everyOperationWithOptions)(
    "%s refuses options outside the caller's classes",
    async (_name, run) => {
      expect(await codeOf(() => run({ caller: "test", guard: safeOnly }))).toBe("PERMISSION_DENIED");
      expect(operations.workerPids()).toEqual([]);
    },
  );

  test("without a guard, the gateway's default classes apply (admin included)", async () => {
    // Past the class check, the page server needs CRIU, which cannot start here.
    const run = everyOperationWithOptions.find(([name]) => name === "StartPageServer")![1];
    expect(await codeOf(() => run({ caller: "test" }))).toBe("UNAVAILABLE");
  });
});
