// Everything a dump or pre-dump checks before a worker starts.

import { existsSync } from "node:fs";
import { isIP } from "node:net";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { INVENTORY_FILE, inventoryRecordsDumpTime } from "../../criu/images.js";
import { GatewayError, invalidArgument } from "../errors.js";
import type { Durability, ImageStore } from "../imageStore.js";
import { ancestorsOf } from "../processTree.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import type { Probes } from "./probes.js";

export interface DumpInput {
  checkpointId: string;
  parentCheckpointId: string | undefined;
  options: CriuOptions | undefined;
  /** Whether the reply waits for the images to be on disk; "fsync" when not given. */
  durability?: Durability;
}

/** What the checks found out, for the dump and its checkpoint's metadata. */
export interface CheckedDump {
  pid: number;
  /** "address:port" of the page server that gets the memory, when options.ps sends it there. */
  pagesSentTo: string | undefined;
  criuVersion: string;
}

export async function checkDumpInput(
  kit: OperationKit,
  probes: Probes,
  kind: "dump" | "pre-dump",
  input: DumpInput,
  ctx: OperationContext,
): Promise<CheckedDump> {
  kit.validate(input, ctx);
  const pid = await checkDumpTarget(input.options?.pid, (p) => kit.pool.has(p));
  await checkParent(kit.store, input.parentCheckpointId);
  // After the target checks, whose statuses (NOT_FOUND, PERMISSION_DENIED) callers rely on.
  const pagesSentTo = pageServerTarget(input.options);
  await probes.requireMemTrack(kind, input.options, ctx.signal);
  await probes.requireLazyPageServing(input.options, `a ${kind}`);
  return { pid, pagesSentTo, criuVersion: await probes.criuVersionString() };
}

/** Refuses pids that are invalid, absent, or whose tree would contain the gateway or a worker. */
async function checkDumpTarget(pid: number | undefined, isWorker: (pid: number) => boolean): Promise<number> {
  if (pid === undefined || pid === 0) {
    throw invalidArgument("options.pid is required: the pid of the root of the process tree to dump");
  }
  if (pid < 0) throw invalidArgument(`options.pid must be a positive pid, not ${pid}`);
  if (pid === process.pid || isWorker(pid)) {
    throw new GatewayError("PERMISSION_DENIED", `pid ${pid} is the gateway or one of its CRIU workers`);
  }
  // procfs answers without a disk: synchronously, rather than a thread-pool round trip.
  if (!existsSync(`/proc/${pid}`)) throw new GatewayError("NOT_FOUND", `no process with pid ${pid}`);
  // A dump covers the whole tree under pid: if the gateway is in it, refuse. The gateway's
  // ancestors only ever shrink (an orphan is adopted by an ancestor: a subreaper or init), so
  // the set read at the first dump holds them all; only a pid in it is looked up again, live.
  startupAncestors ??= ancestorsOf(process.pid).then((pids) => new Set(pids));
  if ((await startupAncestors).has(pid) && (await ancestorsOf(process.pid)).includes(pid)) {
    throw new GatewayError(
      "PERMISSION_DENIED",
      `pid ${pid} is an ancestor of the gateway; its tree would include the gateway itself`,
    );
  }
  return pid;
}

/** The gateway's ancestors when the first dump was checked. */
let startupAncestors: Promise<Set<number>> | undefined;

/** A parent must hold memory pages: a dump or a pre-dump, not a cpuinfo checkpoint. */
async function checkParent(store: ImageStore, parentId: string | undefined): Promise<void> {
  if (!parentId) return;
  const parent = await store.get(parentId).catch((err: unknown) => {
    if (err instanceof GatewayError && err.code === "NOT_FOUND")
      throw new GatewayError("NOT_FOUND", `parent checkpoint ${parentId} does not exist`);
    throw err;
  });
  if (parent.kind === "cpuinfo") {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      `parent checkpoint ${parentId} is a cpuinfo checkpoint; a parent must be a dump or a pre-dump`,
    );
  }
  // CRIU tells the same process from a reused pid by the parent's recorded dump time, which it
  // records only with track_mem; without it CRIU fails the dump half-way ("Pid-reuse detection
  // failed"). Say so before a worker starts.
  const inventory = await store.readImage(parentId, INVENTORY_FILE);
  let recorded = false;
  try {
    recorded = inventory !== undefined && inventoryRecordsDumpTime(inventory);
  } catch {
    recorded = false;
  }
  if (!recorded) {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      `parent checkpoint ${parentId} cannot be a parent: CRIU uses a parent only when it recorded the time of its dump, which a pre-dump always does and a dump only with options.track_mem (FeatureCheck says whether this host can track memory)`,
    );
  }
}

/**
 * Where a dump's memory goes when options.ps is set ("address:port"), else undefined. With
 * lazy_pages, CRIU reads ps as the lazy-pages server's port instead and writes memory locally.
 */
function pageServerTarget(options: CriuOptions | undefined): string | undefined {
  const ps = options?.ps;
  if (ps === undefined || options?.lazyPages === true) return undefined;
  if (!ps.address || isIP(ps.address) === 0) {
    throw invalidArgument(
      "options.ps.address must be the page server's IP address (StartPageServer's address, or the host's)",
    );
  }
  if (!ps.port) throw invalidArgument("options.ps.port is required: the port StartPageServer answered with");
  return isIP(ps.address) === 6 ? `[${ps.address}]:${ps.port}` : `${ps.address}:${ps.port}`;
}
