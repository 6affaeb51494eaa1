// A checkpoint made by CRIU into a staged directory: published once it is complete, removed when
// anything before that fails.

import type { CheckpointInfo, CheckpointMeta, ImageStore, StagedDump } from "../imageStore.js";

/**
 * Stages checkpoint `id`, lets `write` fill it (CRIU's request), then publishes it with the
 * metadata `write` returns. Whatever fails before the publish discards the staged directory.
 */
export async function intoStagedCheckpoint<T>(
  store: ImageStore,
  id: string,
  parentId: string | undefined,
  write: (staged: StagedDump) => Promise<{ meta: CheckpointMeta; extra: T }>,
): Promise<{ checkpoint: CheckpointInfo; extra: T }> {
  const staged = await store.stage(id, parentId);
  let published = false;
  try {
    const { meta, extra } = await write(staged);
    const checkpoint = await staged.publish(meta);
    published = true;
    return { checkpoint, extra };
  } finally {
    if (!published) await staged.discard();
  }
}
