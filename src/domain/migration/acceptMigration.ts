// AcceptMigration, on the target gateway: receive the images into a staged checkpoint, restore the
// tree stopped, and let it run only when the source commits. Whatever ends the call before that
// kills the restored tree; the checkpoint is removed in every case.
import { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import type { LazyPages, OperationContext, RestoreInput, RestoreResult } from "../criuOperations.js";
import { GatewayError, invalidArgument } from "../errors.js";
import type { ImageStore } from "../imageStore.js";
import { processTree } from "../processTree.js";
import { ImageWriter } from "./imageChunks.js";
import { acceptPostCopy } from "./postCopyTarget.js";
import { StoppedTree } from "./stoppedTree.js";
import type { MigrationHeader, SourceLink, ToTarget } from "./targetLink.js";

export interface AcceptMigrationDeps {
  store: ImageStore;
  restore(input: RestoreInput, ctx: OperationContext): Promise<RestoreResult>;
  /** Post-copy: CRIU's lazy-pages daemon for a restore whose work directory is `workDir`. */
  startLazyPages(workDir: string, pageSocket: number): Promise<LazyPages>;
  /** Holds back the start of warm workers until the returned function is called (see WorkerPool). */
  holdRefills(): () => void;
  /** Judges the header by the policy: the context the restore runs with, or a refusal. */
  admit(header: MigrationHeader): Promise<OperationContext>;
}

export async function acceptMigration(source: SourceLink, deps: AcceptMigrationDeps): Promise<void> {
  const first = await source.next();
  if (first?.kind !== "header")
    throw invalidArgument("the first message of AcceptMigration must be its header");
  const { header } = first;
  if (header.mode === "pre-copy") {
    throw new GatewayError("UNIMPLEMENTED", `this gateway cannot receive a ${header.mode} migration yet`);
  }
  const ctx = await deps.admit(header);
  if (header.mode === "post-copy") return acceptPostCopy(source, deps, header, ctx);
  let published = false;
  let tree: StoppedTree | undefined;
  try {
    await receiveImages(source, deps.store, header);
    published = true;
    const restored = await deps.restore(
      {
        checkpointId: header.checkpointId,
        options: CriuOptions.fromPartial({ ...header.restoreOptions, leaveStopped: true }),
      },
      ctx,
    );
    const pids = (await processTree(restored.pid)).map((p) => p.pid);
    tree = StoppedTree.hold(deps.store.stoppedTreesDir, header.checkpointId, pids, "kill");
    await source.send({ kind: "restored", targetPid: restored.pid, statistics: restored.statistics });
    expectNext(await source.next(), "commit");
    tree.resume();
    tree = undefined;
    await source.send({ kind: "running", targetPid: restored.pid });
  } catch (err) {
    // Restored but never committed: the source still has the tree, so this copy must never run.
    tree?.kill();
    throw err;
  } finally {
    if (published) await deps.store.delete(header.checkpointId).catch(() => undefined);
  }
}

/** Stages the chunks up to images-end and publishes them as a dump; nothing stays on failure. */
export async function receiveImages(
  source: Pick<SourceLink, "next">,
  store: ImageStore,
  header: MigrationHeader,
): Promise<void> {
  const staged = await store.stage(header.checkpointId, undefined);
  try {
    await receiveInto(source, staged.path);
    await staged.publish({
      rootPid: header.rootPid,
      parentId: undefined,
      criuVersion: header.criuVersion,
      leaveRunning: false,
      // Restored at once and removed afterwards; the source keeps the tree until the commit.
      durability: "none",
    });
  } catch (err) {
    await staged.discard();
    throw err;
  }
}

/** Writes the chunks up to images-end into `dir`; on failure, what was written is the caller's to remove. */
export async function receiveInto(source: Pick<SourceLink, "next">, dir: string): Promise<void> {
  const writer = new ImageWriter(dir);
  try {
    for (;;) {
      const message = await source.next();
      if (message?.kind === "images-end") break;
      if (message?.kind !== "chunk") throw unexpected(message, "a chunk or images_end");
      await writer.write(message.chunk);
    }
    await writer.finish();
  } catch (err) {
    await writer.abandon();
    throw err;
  }
}

export function expectNext(message: ToTarget | undefined, kind: ToTarget["kind"]): void {
  if (message?.kind !== kind) throw unexpected(message, kind);
}

function unexpected(message: ToTarget | undefined, wanted: string): GatewayError {
  if (message === undefined) {
    return new GatewayError("CANCELLED", `the source gateway ended the migration before ${wanted}`);
  }
  return invalidArgument(`AcceptMigration: ${message.kind} where ${wanted} was due`);
}
