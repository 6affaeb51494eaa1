// A checkpoint made by CRIU into a staged directory: published once it is complete; removed when
// anything before that fails, unless the dump had passed its point of no return (StagedDump).

import { inSpan } from "../../observability/tracing.js";
import { GatewayError } from "../errors.js";
import type { CheckpointInfo, CheckpointMeta, ImageStore, KeptDump, StagedDump } from "../imageStore.js";

/**
 * Stages checkpoint `id`, lets `write` fill it (CRIU's request), then publishes it with the
 * metadata `write` returns. A failure discards the staged directory, or, past the point of no
 * return, keeps it, and then says so in the error instead of the failure's own words.
 */
export async function intoStagedCheckpoint<T>(
  store: ImageStore,
  id: string,
  parentId: string | undefined,
  write: (staged: StagedDump) => Promise<{ meta: CheckpointMeta; extra: T }>,
): Promise<{ checkpoint: CheckpointInfo; extra: T }> {
  const staged = await inSpan("stage", { "checkpoint.id": id }, () => store.stage(id, parentId));
  try {
    const { meta, extra } = await write(staged);
    const checkpoint = await inSpan("publish", { "checkpoint.id": id }, () => staged.publish(meta));
    return { checkpoint, extra };
  } catch (err) {
    const kept = await staged.discard();
    throw kept ? keptUnconfirmed(kept, err) : err;
  }
}

/** The error for a dump that failed after its point of no return, and was kept. */
function keptUnconfirmed(kept: KeptDump, cause: unknown): GatewayError {
  const where = kept.listed
    ? `it is kept as checkpoint ${kept.id} in state UNCONFIRMED: ListCheckpoints shows it and Restore accepts it`
    : `its images are kept in the image store's staging area (checkpoint id ${kept.id} is taken) and the gateway's next start recovers them`;
  const said = cause instanceof GatewayError ? ` (${cause.message})` : "";
  return new GatewayError(
    "ABORTED",
    `the dump of checkpoint ${kept.id} failed after CRIU was let stop the processes${said}; ${where}. Check whether the processes still run before restoring it`,
    cause instanceof GatewayError ? cause.criu : undefined,
    { cause },
  );
}
