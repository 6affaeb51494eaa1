// One dump or pre-dump into a staged checkpoint, published once CRIU has succeeded.

import type { DumpStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { type CriuReq, CriuReqType } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { type CheckpointInfo, type CheckpointMeta, DUMP_LOG, PRE_DUMP_LOG } from "../imageStore.js";
import type { ProcessRecord } from "../processTree.js";
import type { CallbackHooks, CallbackSend } from "./callbackBridge.js";
import type { CheckedDump, DumpInput } from "./dumpChecks.js";
import type { OperationKit } from "./operationKit.js";
import { intoStagedCheckpoint } from "./stagedCheckpoint.js";
import { dumpStatistics } from "./statistics.js";

export interface DumpResult {
  checkpoint: CheckpointInfo;
  restored: boolean;
  statistics: DumpStatistics | undefined;
}

/** A lone dump or pre-dump, or a pre-dump of an iterative dump's loop. */
export type DumpStepKind = "dump" | "pre-dump" | "loop-pre-dump";

// A lone pre-dump is SINGLE_PRE_DUMP: PRE_DUMP keeps the worker waiting for further pre-dump
// requests on the same connection, which only an iterative dump sends.
const REQUEST_TYPE: Record<DumpStepKind, CriuReqType> = {
  dump: CriuReqType.DUMP,
  "pre-dump": CriuReqType.SINGLE_PRE_DUMP,
  "loop-pre-dump": CriuReqType.PRE_DUMP,
};

/**
 * Runs one dump step with `send` (on its own worker, or on the worker of an iterative dump).
 * `frozenTree` reads (and may refuse) the tree at post-dump.
 */
export async function dumpStep(
  kit: OperationKit,
  kind: DumpStepKind,
  input: DumpInput,
  checked: CheckedDump,
  frozenTree: (rootPid: number) => Promise<ProcessRecord[]>,
  send: CallbackSend,
): Promise<DumpResult> {
  const { pid } = checked;
  const metaKind = kind === "dump" ? "dump" : "pre-dump";
  const logFile = kind === "dump" ? DUMP_LOG : PRE_DUMP_LOG;
  const context: FailureContext = {
    action: `${metaKind} pid ${pid}`,
    pid,
    checkpointId: input.checkpointId,
    logTail: [],
  };
  const parentId = input.parentCheckpointId || undefined;
  const { checkpoint, extra } = await intoStagedCheckpoint(
    kit.store,
    input.checkpointId,
    parentId,
    async (staged) => {
      const req: CriuReq = {
        type: REQUEST_TYPE[kind],
        opts: kit.criuOpts(input.options, {
          imagesDirFd: staged.fd,
          logFile,
          parentImg: staged.parentImg,
          notifyScripts: true,
        }),
      };
      // At post-dump the tree is frozen and complete: what was checked before CRIU started is
      // checked again on exactly what CRIU is about to write off, and kept with the checkpoint.
      let processes: ProcessRecord[] | undefined;
      const meta = (dumpStatistics?: DumpStatistics): CheckpointMeta => ({
        rootPid: pid,
        parentId,
        criuVersion: checked.criuVersion,
        // A pre-dump never stops the tree (CRIU forces it to keep running).
        leaveRunning: metaKind === "pre-dump" || (input.options?.leaveRunning ?? false),
        kind: metaKind,
        dumpStatistics,
        processes,
        pagesSentTo: checked.pagesSentTo,
        durability: input.durability,
      });
      const hooks: CallbackHooks = {
        gate: async (script) => {
          if (script === "post-dump") processes = await frozenTree(pid);
        },
        // The gateway's own files are written before CRIU may stop the processes, so that a
        // failure here (a full disk) vetoes the dump and they run on.
        commit: async (script) => {
          if (script !== "post-dump") return;
          await staged.secure(meta());
          await kit.deps.onDumpPhase?.("secured", input.checkpointId);
        },
      };
      const resp = await send(req, context, { dir: staged.path, file: logFile }, hooks);
      if (!resp.success) {
        // CRIU resumes the processes whenever it fails, post-dump or not.
        staged.rolledBack();
        context.logTail = await kit.logTail(staged.path, logFile);
        throw criuRefused(resp, context);
      }
      await kit.deps.onDumpPhase?.("answered", input.checkpointId);
      const statistics = await dumpStatistics(staged.path);
      // Published even when the caller has gone: CRIU succeeded, and unless leave_running was set
      // the processes now exist only in these images.
      return { meta: meta(statistics), extra: { restored: resp.dump?.restored ?? false, statistics } };
    },
  );
  return { checkpoint, ...extra };
}
