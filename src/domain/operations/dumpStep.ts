// One dump or pre-dump into a staged checkpoint, published once CRIU has succeeded.

import type { DumpStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { type CriuReq, CriuReqType } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { toCriuOpts } from "../criuOptions.js";
import { type CheckpointInfo, DUMP_LOG, PRE_DUMP_LOG } from "../imageStore.js";
import type { ProcessRecord } from "../processTree.js";
import type { CallbackSend } from "./callbackBridge.js";
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
        opts: toCriuOpts(input.options, {
          imagesDirFd: staged.fd,
          logFile,
          parentImg: staged.parentImg,
          notifyScripts: true,
        }),
      };
      // At post-dump the tree is frozen and complete: what was checked before CRIU started is
      // checked again on exactly what CRIU is about to write off, and kept with the checkpoint.
      let processes: ProcessRecord[] | undefined;
      const gate = async (script: string) => {
        if (script === "post-dump") processes = await frozenTree(pid);
      };
      const resp = await send(req, context, { dir: staged.path, file: logFile }, gate);
      if (!resp.success) {
        context.logTail = await kit.logTail(staged.path, logFile);
        throw criuRefused(resp, context);
      }
      const statistics = await dumpStatistics(staged.path);
      // Published even when the caller has gone: CRIU succeeded, and unless leave_running was set
      // the processes now exist only in these images.
      const meta = {
        rootPid: pid,
        parentId,
        criuVersion: checked.criuVersion,
        // A pre-dump never stops the tree (CRIU forces it to keep running).
        leaveRunning: metaKind === "pre-dump" || (input.options?.leaveRunning ?? false),
        kind: metaKind,
        dumpStatistics: statistics,
        processes,
        pagesSentTo: checked.pagesSentTo,
        durability: input.durability,
      } as const;
      return { meta, extra: { restored: resp.dump?.restored ?? false, statistics } };
    },
  );
  return { checkpoint, ...extra };
}
