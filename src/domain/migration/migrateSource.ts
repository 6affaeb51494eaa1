// Migrate, on the source gateway: dump the tree stopped, send its images, let the target restore
// it, and only then let go of it. Until the target runs the tree, every failure continues it here.
import {
  CriuOptions,
  type DumpStatistics,
  type RestoreStatistics,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type {
  DumpInput,
  DumpResult,
  Features,
  LazyDumpInput,
  LazyDumpResult,
  OperationContext,
} from "../criuOperations.js";
import { GatewayError, invalidArgument } from "../errors.js";
import type { ImageStore } from "../imageStore.js";
import {
  checkModePossible,
  type HostLimits,
  type MigrationMode,
  refuseModeOwnedOptions,
} from "./migrationMode.js";
import { postCopyFromSource } from "./postCopySource.js";
import { elapsedUs, expect, released, sendHeader, sendImages } from "./sourceSteps.js";
import { StoppedTree } from "./stoppedTree.js";
import type { FromTarget, TargetLink } from "./targetLink.js";

export interface MigrateInput {
  pid: number;
  target: string;
  mode: MigrationMode;
  dumpOptions: CriuOptions | undefined;
  restoreOptions: CriuOptions | undefined;
  checkpointId: string;
}

export interface MigrationStatistics {
  mode: MigrationMode;
  frozenTimeUs: number;
  dumpTimeUs: number;
  transferTimeUs: number;
  restoreTimeUs: number;
  totalTimeUs: number;
  imageBytes: number;
  lazyPages: number;
}

/** One step of a migration, as the caller sees it. */
export type MigrationEvent =
  | { kind: "frozen"; pids: number[]; dumpStatistics: DumpStatistics | undefined }
  | { kind: "images-sent"; bytes: number; files: number }
  | { kind: "restored"; targetPid: number; restoreStatistics: RestoreStatistics | undefined }
  | { kind: "memory"; pagesMoved: number; pagesTotal: number }
  | { kind: "source-released" }
  | { kind: "process-lost"; reason: string }
  | { kind: "done"; targetPid: number; statistics: MigrationStatistics };

export interface MigrateSourceDeps {
  store: ImageStore;
  dump(input: DumpInput, ctx: OperationContext): Promise<DumpResult>;
  lazyDump(input: LazyDumpInput, ctx: OperationContext): Promise<LazyDumpResult>;
  featureCheck(ctx: OperationContext): Promise<Features>;
  /** CRIU's version here, for the target's record of the checkpoint. */
  criuVersion(): Promise<string>;
  host: HostLimits;
  /** FAILED_PRECONDITION unless this gateway may connect to `target`. */
  checkTarget(target: string): void;
  connect(target: string): TargetLink;
  /** Holds back the start of warm workers until the returned function is called (see WorkerPool). */
  holdRefills(): () => void;
}

/** Refusals that need nothing frozen and no connection. */
export async function checkMigrateInput(
  input: MigrateInput,
  deps: MigrateSourceDeps,
  ctx: OperationContext,
): Promise<void> {
  if (!Number.isInteger(input.pid) || input.pid < 1)
    throw invalidArgument("pid: the root of the tree to move is required");
  refuseModeOwnedOptions(input.dumpOptions, "dump_options");
  refuseModeOwnedOptions(input.restoreOptions, "restore_options");
  deps.checkTarget(input.target);
  await checkModePossible(input.mode, () => deps.featureCheck(ctx), deps.host);
  if (input.mode === "pre-copy") {
    throw new GatewayError(
      "UNIMPLEMENTED",
      "PRE_COPY is not implemented by this gateway yet; use POST_COPY or STOP_AND_COPY",
    );
  }
}

export async function migrateFromSource(
  input: MigrateInput,
  deps: MigrateSourceDeps,
  ctx: OperationContext,
  emit: (event: MigrationEvent) => Promise<void>,
): Promise<void> {
  await checkMigrateInput(input, deps, ctx);
  const link = deps.connect(input.target);
  try {
    await sendHeader(link, input, await deps.criuVersion());
  } catch (err) {
    link.abort();
    throw err;
  }
  if (input.mode === "post-copy") return postCopyFromSource(input, deps, ctx, emit, link);
  return stopAndCopy(input, deps, ctx, emit, link);
}

async function stopAndCopy(
  input: MigrateInput,
  deps: MigrateSourceDeps,
  ctx: OperationContext,
  emit: (event: MigrationEvent) => Promise<void>,
  link: TargetLink,
): Promise<void> {
  const started = process.hrtime.bigint();
  let tree: StoppedTree | undefined;
  try {
    const dumpStarted = process.hrtime.bigint();
    // Stopped, not killed: should anything fail before the target runs the tree, it continues here.
    const dumped = await deps.dump(
      {
        checkpointId: input.checkpointId,
        parentCheckpointId: undefined,
        options: CriuOptions.fromPartial({ ...input.dumpOptions, pid: input.pid, leaveStopped: true }),
        // The tree lives on here, stopped: a crash loses nothing the disk would have kept, and a
        // flush of every image would only lengthen the freeze.
        durability: "none",
      },
      ctx,
    );
    const dumpTimeUs = elapsedUs(dumpStarted);
    const pids = dumped.checkpoint.processes?.map((p) => p.pid) ?? [input.pid];
    tree = StoppedTree.hold(deps.store.stoppedTreesDir, input.checkpointId, pids, "continue");
    await emit({ kind: "frozen", pids, dumpStatistics: dumped.statistics });
    const transferStarted = process.hrtime.bigint();
    const opened = await deps.store.openCheckpoint(input.checkpointId);
    const sent = await sendImages(link, opened.path).finally(() => opened.close());
    const transferTimeUs = elapsedUs(transferStarted);
    await emit({ kind: "images-sent", ...sent });
    const restoreStarted = process.hrtime.bigint();
    const restored = expect(await link.next(), "restored");
    await emit({ kind: "restored", targetPid: restored.targetPid, restoreStatistics: restored.statistics });
    ctx.signal?.throwIfAborted();
    const held = tree;
    tree = undefined;
    const running = await commit(link, held, restored.targetPid);
    const restoreTimeUs = elapsedUs(restoreStarted);
    const frozenTimeUs = elapsedUs(dumpStarted);
    await released(emit, running.targetPid, {
      mode: input.mode,
      frozenTimeUs,
      dumpTimeUs,
      transferTimeUs,
      restoreTimeUs,
      totalTimeUs: elapsedUs(started),
      imageBytes: sent.bytes,
      lazyPages: 0,
    });
    link.close();
  } catch (err) {
    link.abort();
    // Before the commit: the target has not run the tree and never will; it goes on here.
    tree?.resume();
    throw err;
  } finally {
    await deps.store.delete(input.checkpointId).catch(() => undefined);
  }
}

/**
 * Lets the target run the tree, then kills the copy here. Past the commit the tree is the
 * target's: a lost confirmation no longer continues it here (it would then run on both hosts).
 */
async function commit(
  link: TargetLink,
  tree: StoppedTree,
  targetPid: number,
): Promise<Extract<FromTarget, { kind: "running" }>> {
  try {
    // From here a restart must not continue the copy here: the target may run it.
    tree.forget();
    await link.send({ kind: "commit" });
    return expect(await link.next(), "running");
  } catch (err) {
    throw new GatewayError(
      "UNAVAILABLE",
      `the target was told to run the tree (pid ${targetPid} there) but did not confirm it; it runs there unless the target failed: check the target. The copy here was killed, so that it never runs on both hosts`,
      undefined,
      { cause: err },
    );
  } finally {
    tree.kill();
  }
}
