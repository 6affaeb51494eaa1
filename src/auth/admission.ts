// Whether a call may run: its RPCs, checkpoints, options and processes judged against the caller's
// grant before any worker starts. The facts it needs (a checkpoint's lineage, its recorded
// processes, the live process tree) are read from the domain.
import type { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import { checkOptionClasses, optionClassesUsed } from "../domain/criuOptions.js";
import { GatewayError, permissionDenied } from "../domain/errors.js";
import { ImageStore } from "../domain/imageStore.js";
import type { OperationGuard } from "../domain/operationGuard.js";
import { type ProcessRecord, processTree, readProcess } from "../domain/processTree.js";
import type { Identity } from "./identity.js";
import { operationGuardFor } from "./operationGuardFor.js";
import {
  allowsCheckpoint,
  allowsRpc,
  type CheckpointAccess,
  type Grant,
  maxRequestBytes,
  type Policy,
  processDenial,
} from "./policy.js";

/** What a call would touch, for the policy to judge before anything runs. */
export interface AccessRequest {
  checkpoints?: readonly { id: string; access: CheckpointAccess }[];
  /** The root of the tree a dump would cover: every process in it must be granted. */
  dumpRoot?: number;
  /** One process the call touches. */
  pid?: number;
  /** A restore: the processes recorded with this checkpoint must be granted. */
  restoreOf?: string;
  /** A dump's or pre-dump's parent checkpoint, whose memory may pass into the new one. */
  parent?: string;
  options?: CriuOptions;
  /** The call runs a CRIU worker: it counts against the concurrency limits. */
  operation?: boolean;
  /** The request's size on the wire, for the grant's request size limit. */
  requestBytes?: number;
}

/** A call let in: who it is, what it may do further, and its slot to give back. */
export interface Admission {
  identity: Identity;
  grant: Grant;
  /** What the domain's operations check on the caller's behalf while they run. */
  guard: OperationGuard;
  canRead(checkpointId: string): boolean;
  /** Refuses a further message of the call (a Session's) larger than the grant allows. */
  checkSize(requestBytes: number | undefined): void;
  release(): void;
}

/** The facts about checkpoints that admission reads from the image store. */
export interface CheckpointFacts {
  /** The processes a checkpoint recorded, for restores. */
  recordedProcesses(checkpointId: string): Promise<ProcessRecord[] | undefined>;
  /** A checkpoint and its ancestors, itself first; empty when it does not exist. */
  lineage(checkpointId: string): Promise<readonly { id: string; importedImages: boolean }[]>;
}

const VERB: Record<CheckpointAccess, string> = { read: "reading", write: "writing", delete: "deleting" };

/**
 * Checks one call against the grant; throws PERMISSION_DENIED or RESOURCE_EXHAUSTED. `acquire`
 * takes the call's operation slot, last, once everything else has passed.
 */
export async function admit(
  policy: Policy,
  identity: Identity,
  grant: Grant,
  rpcs: readonly string[],
  access: AccessRequest,
  facts: CheckpointFacts,
  acquire: () => () => void,
): Promise<Admission> {
  const checkSize = sizeCheck(maxRequestBytes(policy, grant), grant);
  checkSize(access.requestBytes);
  for (const rpc of rpcs) {
    if (!allowsRpc(grant, rpc)) throw permissionDenied(`grant "${grant.name}" does not allow ${rpc}`);
  }
  for (const { id, access: mode } of access.checkpoints ?? []) {
    ImageStore.validateId(id);
    if (!allowsCheckpoint(grant, id, mode)) {
      throw permissionDenied(`grant "${grant.name}" does not allow ${VERB[mode]} checkpoint ${id}`);
    }
  }
  await checkDedup(grant, access, facts);
  checkOptions(grant, access.options);
  if (!grant.admin) await checkProcesses(grant, access, facts);
  const release = access.operation ? acquire() : () => {};
  return {
    identity,
    grant,
    guard: operationGuardFor(grant),
    canRead: (id) => allowsCheckpoint(grant, id, "read"),
    checkSize,
    release,
  };
}

function sizeCheck(limit: number | undefined, grant: Grant): (size: number | undefined) => void {
  return (size) => {
    if (size !== undefined && limit !== undefined && size > limit) {
      throw new GatewayError(
        "RESOURCE_EXHAUSTED",
        `the request is ${size} bytes, more than the ${limit} the policy allows grant "${grant.name}"`,
      );
    }
  };
}

/**
 * The one check of option classes: admin-class options need a grant that gives them, and
 * never-class options (that run commands or name host files) are refused to everyone.
 */
function checkOptions(grant: Grant, options: CriuOptions | undefined): void {
  const refused = optionClassesUsed(options).filter((c) => c !== "never" && !grant.optionClasses.has(c));
  if (refused.length > 0) {
    throw permissionDenied(`grant "${grant.name}" does not allow ${refused.join(" or ")}-class options`);
  }
  checkOptionClasses(options, grant.optionClasses);
}

/**
 * auto_dedup writes: a restore punches the pages it restores out of its checkpoint's images and
 * its ancestors', and a dump with a parent punches the pages it finds unchanged out of the
 * parent's and every ancestor's. So it needs write access to that whole chain, not just read.
 */
async function checkDedup(grant: Grant, access: AccessRequest, facts: CheckpointFacts): Promise<void> {
  if (access.options?.autoDedup !== true || grant.checkpoints.write === "all") return;
  const from = access.restoreOf ?? access.parent;
  if (from === undefined) return;
  const ancestors = (await facts.lineage(from)).slice(1).map((c) => c.id);
  for (const id of [from, ...ancestors]) {
    if (!allowsCheckpoint(grant, id, "write")) {
      const what = access.restoreOf === undefined ? "finds unchanged" : "restores";
      throw permissionDenied(
        `grant "${grant.name}" does not allow writing checkpoint ${id}, which auto_dedup would change: CRIU punches the pages it ${what} out of checkpoint ${from}${ancestors.length > 0 ? " and every ancestor" : ""}. Leave auto_dedup unset`,
      );
    }
  }
}

/** A non-administrator's call touches only processes its grant covers, now and as recorded. */
async function checkProcesses(grant: Grant, access: AccessRequest, facts: CheckpointFacts): Promise<void> {
  const deny = (record: ProcessRecord, why: string) => {
    const denial = processDenial(grant, record);
    if (denial) throw permissionDenied(`${denial}; ${why}`);
  };
  if (access.dumpRoot !== undefined && Number.isInteger(access.dumpRoot) && access.dumpRoot > 0) {
    // A pid that does not exist is left to the operation, which says NOT_FOUND.
    for (const p of await processTree(access.dumpRoot)) {
      deny(p, `a dump covers the whole tree under pid ${access.dumpRoot}`);
    }
  }
  if (access.pid !== undefined && Number.isInteger(access.pid) && access.pid > 0) {
    const p = await readProcess(access.pid);
    if (p) deny(p, "the call would touch it");
  }
  if (access.restoreOf !== undefined) {
    // The one place a checkpoint without a record of its processes is refused to non-admins.
    const recorded = await facts.recordedProcesses(access.restoreOf);
    if (!recorded) {
      throw permissionDenied(
        `checkpoint ${access.restoreOf} has no record of the processes it holds, so only an administrator may restore it`,
      );
    }
    for (const p of recorded) deny(p, `checkpoint ${access.restoreOf} would re-create it`);
  }
  await checkImported(access, facts);
}

/**
 * Images a caller imported say whatever the caller wrote: restoring them, or dumping on top of
 * them (unchanged memory then comes from the parent), would pass them off as a granted tree.
 */
async function checkImported(access: AccessRequest, facts: CheckpointFacts): Promise<void> {
  // The marker passes down to children; the oldest marked ancestor is the one imported into.
  const importedIn = async (id: string) =>
    (await facts.lineage(id)).filter((c) => c.importedImages).at(-1)?.id;
  if (access.restoreOf !== undefined) {
    const source = await importedIn(access.restoreOf);
    if (source) {
      throw permissionDenied(
        `checkpoint ${access.restoreOf} ${source === access.restoreOf ? "holds" : `descends from checkpoint ${source}, which holds`} images imported with ImportImages; CRIU would restore whatever they say, as root, so only an administrator may restore it`,
      );
    }
  }
  if (access.parent !== undefined) {
    const source = await importedIn(access.parent);
    if (source) {
      throw permissionDenied(
        `parent checkpoint ${access.parent} ${source === access.parent ? "holds" : `descends from checkpoint ${source}, which holds`} images imported with ImportImages; a dump on it takes unchanged memory from them, so only an administrator may use it as a parent`,
      );
    }
  }
}
