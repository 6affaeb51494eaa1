// Dump and PreDump: one request on a fresh worker.

import { processTree } from "../processTree.js";
import { freshWorkerBridge } from "./callbackBridge.js";
import { checkDumpInput, type DumpInput } from "./dumpChecks.js";
import { type DumpResult, dumpStep } from "./dumpStep.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import type { Probes } from "./probes.js";
import { trackOperation } from "./trackOperation.js";

export function createDump(kit: OperationKit, probes: Probes) {
  const run = (kind: "dump" | "pre-dump", input: DumpInput, ctx: OperationContext): Promise<DumpResult> =>
    trackOperation(
      kit,
      kind,
      ctx,
      { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId },
      async (operationId) => {
        // No warm worker is started while this dump publishes (its reply would wait for the spawn).
        const releaseRefills = kit.pool.holdRefills();
        try {
          return await dumpOnce(kind, input, ctx, operationId);
        } finally {
          releaseRefills();
        }
      },
      (result) => ({ dumpStatistics: result.statistics }),
    );

  async function dumpOnce(
    kind: "dump" | "pre-dump",
    input: DumpInput,
    ctx: OperationContext,
    operationId: string,
  ): Promise<DumpResult> {
    const checked = await checkDumpInput(kit, probes, kind, input, ctx);
    const holder = { operationId, kind, checkpointId: input.checkpointId };
    const unlock = await kit.lockTree(checked.pid, holder);
    // The worker exits while the dump is published; the operation ends once it has.
    const exits: Promise<unknown>[] = [];
    try {
      const send = freshWorkerBridge(kit, operationId, ctx, input.options, exits);
      return await dumpStep(kit, kind, input, checked, ctx.guard?.frozenTree ?? processTree, send);
    } finally {
      await Promise.all(exits);
      unlock();
    }
  }

  return {
    dump: (input: DumpInput, ctx: OperationContext) => run("dump", input, ctx),
    preDump: (input: DumpInput, ctx: OperationContext) => run("pre-dump", input, ctx),
  };
}
