// Steps both of the source's migration modes take.
import { GatewayError } from "../errors.js";
import { readImageChunks } from "./imageChunks.js";
import type { MigrateInput, MigrationEvent, MigrationStatistics } from "./migrateSource.js";
import type { FromTarget, MigrationHeader, TargetLink } from "./targetLink.js";

export const elapsedUs = (since: bigint) => Number((process.hrtime.bigint() - since) / 1000n);

export function headerOf(input: MigrateInput, criuVersion: string): MigrationHeader {
  return {
    checkpointId: input.checkpointId,
    mode: input.mode,
    restoreOptions: input.restoreOptions,
    rootPid: input.pid,
    criuVersion,
  };
}

/**
 * Opens the migration on the target with its header, before anything is frozen: the target
 * admits it and stages its checkpoint while the tree is dumped here.
 */
export async function sendHeader(link: TargetLink, input: MigrateInput, criuVersion: string): Promise<void> {
  await link.send({ kind: "header", header: headerOf(input, criuVersion) });
}

/** Sends the images of `dir`, then images-end. */
export async function sendImages(link: TargetLink, dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  const names = new Set<string>();
  for await (const chunk of readImageChunks(dir)) {
    await link.send({ kind: "chunk", chunk });
    bytes += chunk.data.length;
    names.add(chunk.name);
  }
  await link.send({ kind: "images-end" });
  return { bytes, files: names.size };
}

/** The target's message, which must be a `kind`. */
export function expect<K extends FromTarget["kind"]>(
  message: FromTarget | undefined,
  kind: K,
): Extract<FromTarget, { kind: K }> {
  if (message === undefined) {
    throw new GatewayError("UNAVAILABLE", `the target ended the migration before it answered ${kind}`);
  }
  if (message.kind !== kind) {
    throw new GatewayError("INTERNAL", `the target answered ${message.kind} where ${kind} was due`);
  }
  return message as Extract<FromTarget, { kind: K }>;
}

/** The last two steps: the tree lives on the target only, with what the migration cost. */
export async function released(
  emit: (event: MigrationEvent) => Promise<void>,
  targetPid: number,
  statistics: MigrationStatistics,
): Promise<void> {
  await emit({ kind: "source-released" });
  await emit({ kind: "done", targetPid, statistics });
}
