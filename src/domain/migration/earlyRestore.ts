// The restore of a post-copy migration's target, started when the header arrives rather than once
// the images are in. CRIU's start-up before it reads any image (its kernel feature detection,
// tens of milliseconds where CRIU cannot keep its cache) then runs while the source still dumps,
// instead of in the freeze. CRIU reads the images from a scratch directory of its own, waiting on
// the first one it opens, a named pipe, until all are in (src/criu/imageFifos.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { fillImageFifo, linkImages, makeImageFifos } from "../../criu/imageFifos.js";
import type { OperationContext, RestoreResult } from "../criuOperations.js";
import type { OpenDirectory } from "../imageStore.js";
import { describeCheckpoint } from "../metaFile.js";
import type { AcceptMigrationDeps } from "./acceptMigration.js";
import type { MigrationHeader } from "./targetLink.js";

/** The image a restore opens first (CRIU's check_img_inventory): the one it waits on. */
const FIRST_IMAGE = ["inventory.img"] as const;

/** What a post-copy checkpoint records as the place of its memory. */
const PAGES_AT_SOURCE = "the migration's source gateway (post-copy)";

export interface EarlyRestore {
  /** Settles when the restore does. */
  readonly restored: Promise<RestoreResult>;
  /** Hands the restore the images in `dir`, all of them in place: it goes on from there. */
  imagesIn(dir: string): Promise<void>;
  /**
   * Ends it: a restore still waiting for its images reads an empty inventory and fails. Waits
   * for the restore to settle, then removes its directory.
   */
  close(): Promise<void>;
}

/** Starts the restore of `staged` (the staged checkpoint, its work directory), stopped, with lazy pages. */
export async function startEarlyRestore(
  deps: Pick<AcceptMigrationDeps, "restore" | "store">,
  header: MigrationHeader,
  staged: OpenDirectory,
  ctx: OperationContext,
): Promise<EarlyRestore> {
  const view = await deps.store.scratch("restore-images");
  const fifo = join(view.path, FIRST_IMAGE[0]);
  try {
    makeImageFifos(view.path, FIRST_IMAGE);
  } catch (err) {
    await view.discard();
    throw err;
  }
  const restored = deps.restore(
    {
      checkpointId: header.checkpointId,
      options: CriuOptions.fromPartial({ ...header.restoreOptions, leaveStopped: true }),
      lazyPages: true,
      staged: { dir: staged, imagesDir: view, info: stagedInfo(header) },
    },
    ctx,
  );
  const settled = restored.then(
    () => undefined,
    () => undefined,
  );
  let fed = false;
  return {
    restored,
    async imagesIn(dir) {
      fed = true;
      linkImages(dir, view.path, FIRST_IMAGE);
      await fillImageFifo(fifo, readFileSync(join(dir, FIRST_IMAGE[0])), settled);
    },
    async close() {
      if (!fed) {
        fed = true;
        await fillImageFifo(fifo, new Uint8Array(0), settled).catch(() => undefined);
      }
      await settled;
      await view.discard();
    },
  };
}

/** The checkpoint as the restore sees it: a dump whose memory the lazy-pages daemon pulls. */
function stagedInfo(header: MigrationHeader) {
  return describeCheckpoint(
    header.checkpointId,
    {
      rootPid: header.rootPid,
      criuVersion: header.criuVersion,
      leaveRunning: false,
      kind: "dump",
      pagesSentTo: PAGES_AT_SOURCE,
      durability: "none",
    },
    { sizeBytes: 0, mtime: new Date(), pageServerLog: false, unconfirmed: false },
  );
}
