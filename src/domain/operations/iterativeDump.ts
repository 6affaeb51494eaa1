// Iterative migration on one worker, as CRIU's pre_dump_loop serves it: PRE_DUMP requests, each
// answered and followed by the next, then the DUMP.

import { invalidArgument } from "../errors.js";
import { ImageStore } from "../imageStore.js";
import { processTree } from "../processTree.js";
import { callbackBridge } from "./callbackBridge.js";
import { checkDumpInput, type DumpInput } from "./dumpChecks.js";
import { type DumpResult, dumpStep } from "./dumpStep.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import type { Probes } from "./probes.js";
import { trackOperation } from "./trackOperation.js";

/** The id of pre-dump n of an iterative dump into `checkpointId`. */
export function preDumpId(checkpointId: string, n: number): string {
  return `${checkpointId}.pre-${n}`;
}

const PRE_DUMP_ID_FIELD = "checkpoint_id (with its .pre-<n> suffix)";

export function createIterativeDump(kit: OperationKit, probes: Probes) {
  /**
   * Pre-dump n is checkpoint "<id>.pre-<n>", the child of the one before; the dump is "<id>", the
   * child of the last pre-dump. `next` is asked after each pre-dump whether to pre-dump again
   * (false) or make the final dump (true).
   */
  return function iterativeDump(
    input: DumpInput,
    ctx: OperationContext,
    next: (preDump: DumpResult) => Promise<boolean>,
  ): Promise<DumpResult> {
    const target = { pid: input.options?.pid ?? 0, checkpointId: input.checkpointId };
    return trackOperation(kit.deps.events, "iterative-dump", ctx, target, async (operationId) => {
      ImageStore.validateId(input.checkpointId);
      ImageStore.validateId(preDumpId(input.checkpointId, 1), PRE_DUMP_ID_FIELD);
      if (input.options?.ps !== undefined) {
        throw invalidArgument(
          "options.ps is not supported in an iterative dump; dump to a page server with Dump",
        );
      }
      const checked = await checkDumpInput(kit, probes, "pre-dump", input, ctx);
      const frozenTree = ctx.guard?.frozenTree ?? processTree;
      return kit.pool.withWorker(async (worker) => {
        // One bridge for the worker's life: every step's callbacks are answered the same way.
        const send = callbackBridge(kit, worker, operationId, ctx, input.options);
        let parent = input.parentCheckpointId;
        for (let n = 1; ; n++) {
          const id = preDumpId(input.checkpointId, n);
          ImageStore.validateId(id, PRE_DUMP_ID_FIELD);
          const step = { checkpointId: id, parentCheckpointId: parent, options: input.options };
          const preDump = await dumpStep(kit, "loop-pre-dump", step, checked, frozenTree, send);
          parent = id;
          // The worker waits in CRIU's loop meanwhile; closing it (on cancellation) ends the loop.
          if (await next(preDump)) {
            return dumpStep(kit, "dump", { ...input, parentCheckpointId: parent }, checked, frozenTree, send);
          }
        }
      });
    });
  };
}
