// Restore: re-creates a checkpoint's process tree, confined when the caller's guard says so.

import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { CriuOptions, RestoreStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { STATS_RESTORE_FILE } from "../../criu/images.js";
import { type CriuReq, CriuReqType } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { GatewayError, permissionDenied } from "../errors.js";
import {
  type CheckpointInfo,
  type OpenDirectory,
  type OpenedCheckpoint,
  RESTORE_LOG,
} from "../imageStore.js";
import { type CallbackGate, freshWorkerBridge } from "./callbackBridge.js";
import { killHalfRestored, ticksSinceBoot } from "./halfRestoredTree.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import { restoreStatistics } from "./statistics.js";
import { trackOperation } from "./trackOperation.js";

export interface RestoreInput {
  checkpointId: string;
  options: CriuOptions | undefined;
  /**
   * Post-copy: the checkpoint's memory is pulled on demand from the page server of the dump (a
   * migration's source) by CRIU's lazy-pages daemon, which the caller runs (startLazyPages) with
   * the checkpoint's directory as its work directory, listening there before this restore starts.
   */
  lazyPages?: boolean;
  /**
   * A post-copy migration's target: the checkpoint is staged (`dir`), not in the store, and its
   * images are still arriving. CRIU starts at once, its start-up overlapping their arrival, and
   * reads them from `imagesDir`, waiting on a named pipe there until the caller has them all in
   * place (src/criu/imageFifos.ts); `dir` is its work directory.
   */
  staged?: StagedImages;
}

export interface StagedImages {
  dir: OpenDirectory;
  imagesDir: OpenDirectory;
  info: CheckpointInfo;
}

export interface RestoreResult {
  pid: number;
  statistics: RestoreStatistics | undefined;
}

export function createRestore(kit: OperationKit) {
  async function restoreNow(
    input: RestoreInput,
    ctx: OperationContext,
    operationId: string,
  ): Promise<RestoreResult> {
    kit.validate(input, ctx);
    const opened = input.staged
      ? { ...input.staged.dir, info: input.staged.info, close: async () => undefined }
      : await kit.store.openCheckpoint(input.checkpointId);
    const imagesDir = input.staged?.imagesDir ?? opened;
    const context: FailureContext = {
      action: `restore checkpoint ${input.checkpointId}`,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    try {
      checkRestorable(input.checkpointId, opened.info, input.lazyPages === true);
      const gate = await confinementGate(input.checkpointId, opened, ctx);
      // Statistics of an earlier restore must not pass for this one's.
      await fs.rm(join(imagesDir.path, STATS_RESTORE_FILE), { force: true });
      const opts = kit.criuOpts(input.options, {
        imagesDirFd: imagesDir.fd,
        logFile: RESTORE_LOG,
        notifyScripts: true,
      });
      if (input.lazyPages) opts.lazyPages = true;
      if (input.staged) opts.workDirFd = opened.fd;
      const req: CriuReq = { type: CriuReqType.RESTORE, opts };
      const send = freshWorkerBridge(kit, operationId, ctx, input.options);
      const watch = new RestoredTreeWatch(await ticksSinceBoot());
      const resp = await send(
        req,
        context,
        { dir: opened.path, file: RESTORE_LOG },
        { gate: watch.gate(gate) },
      ).catch(async (err: unknown) => {
        // CRIU kills what it restored when it fails; when its worker died instead, the gateway must.
        await watch.killIfStuck(recordedPids(opened.info));
        throw err;
      });
      if (!resp.success || !resp.restore) {
        context.logTail = await kit.logTail(opened.path, RESTORE_LOG);
        throw criuRefused(resp, context);
      }
      return { pid: resp.restore.pid, statistics: await restoreStatistics(imagesDir.path) };
    } finally {
      await opened.close();
    }
  }

  return function restore(input: RestoreInput, ctx: OperationContext): Promise<RestoreResult> {
    return trackOperation(
      kit,
      "restore",
      ctx,
      { pid: 0, checkpointId: input.checkpointId },
      (id) => restoreNow(input, ctx, id),
      (r) => ({ restoredPid: r.pid, restoreStatistics: r.statistics }),
    );
  };
}

/**
 * What CRIU's callbacks tell of the tree a restore builds: its root's pid (setup-namespaces and
 * post-restore carry it) and whether it was let run (post-resume).
 */
class RestoredTreeWatch {
  #root: number | undefined;
  #resumed = false;

  constructor(private readonly sinceTicks: number) {}

  /** `gate`, watching each callback first. */
  gate(gate: CallbackGate | undefined): CallbackGate {
    return async (script, pid) => {
      if (pid !== undefined) this.#root = pid;
      if (script === "post-resume") this.#resumed = true;
      await gate?.(script, pid);
    };
  }

  /** Kills the tree unless it was let run: it is stuck in CRIU's restorer without its worker. */
  async killIfStuck(recorded: number[]): Promise<void> {
    if (this.#resumed) return;
    await killHalfRestored([...(this.#root === undefined ? [] : [this.#root]), ...recorded], this.sinceTicks);
  }
}

/** The pids a checkpoint's processes had, which a restore gives them again. */
function recordedPids(info: CheckpointInfo): number[] {
  return [info.rootPid, ...(info.processes ?? []).map((p) => p.pid)];
}

/** Only a whole dump with its memory can be restored (with `lazy`, its memory comes from a page server). */
function checkRestorable(checkpointId: string, info: CheckpointInfo, lazy: boolean): void {
  if (info.kind !== "dump") {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      {
        "pre-dump": `checkpoint ${checkpointId} is a pre-dump, which holds memory only and cannot be restored; dump with parent_checkpoint_id ${checkpointId} and restore that`,
        pages: `checkpoint ${checkpointId} holds only the memory a page server received; import the dump's other images into it (ExportImages on the dumping gateway, then ImportImages here) and restore it then`,
        cpuinfo: `checkpoint ${checkpointId} is a cpuinfo checkpoint, not a dump; it cannot be restored`,
      }[info.kind],
    );
  }
  if (info.pagesSentTo !== undefined && !lazy) {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      `checkpoint ${checkpointId} holds no memory: its pages went to the page server at ${info.pagesSentTo}. Export its images (ExportImages) into that server's checkpoint (ImportImages) and restore that one`,
    );
  }
}

/**
 * For a confined restore: the images are judged before CRIU starts, and the gate judges the
 * re-created tree at post-restore, before it runs, on what CRIU opened as root on the caller's
 * behalf. Undefined for an unconfined restore.
 */
async function confinementGate(
  checkpointId: string,
  opened: OpenedCheckpoint,
  ctx: OperationContext,
): Promise<CallbackGate | undefined> {
  const confinement = ctx.guard?.confinedRestore;
  if (!confinement) return undefined;
  const recorded = opened.info.processes;
  if (!recorded) {
    throw permissionDenied(
      `checkpoint ${checkpointId} has no record of the processes it holds, so only an administrator may restore it`,
    );
  }
  await confinement.checkImages(opened.path, checkpointId);
  return async (script, pid) => {
    if (script !== "post-restore") return;
    if (pid === undefined) throw new Error("CRIU's post-restore callback named no pid");
    await confinement.checkRestoredTree(pid, recorded);
  };
}
