// What each call would touch, read from its request for the policy to judge before anything runs.

import type { CriuOptions, SessionRequest } from "../../gen/criu/gateway/v1/gateway.js";
import type { AccessRequest } from "../auth/admission.js";
import { invalidArgument } from "../domain/errors.js";
import type { Judgement } from "./callContext.js";

/**
 * A dump writes its checkpoint, reads its parent (whose lineage the gatekeeper checks too), and
 * covers the tree under options.pid.
 */
export function dumpAccess(req: {
  checkpointId: string;
  parentCheckpointId: string;
  options?: CriuOptions | undefined;
}): AccessRequest {
  const checkpoints: { id: string; access: "read" | "write" }[] = [];
  if (req.checkpointId) checkpoints.push({ id: req.checkpointId, access: "write" });
  if (req.parentCheckpointId) checkpoints.push({ id: req.parentCheckpointId, access: "read" });
  return {
    checkpoints,
    dumpRoot: req.options?.pid,
    parent: req.parentCheckpointId || undefined,
    options: req.options,
    operation: true,
  };
}

/** A restore reads its checkpoint and re-creates the processes recorded with it. */
export function restoreAccess(req: {
  checkpointId: string;
  options?: CriuOptions | undefined;
}): AccessRequest {
  return {
    checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "read" }] : [],
    restoreOf: req.checkpointId || undefined,
    options: req.options,
    operation: true,
  };
}

/** Reading one checkpoint (none when the id is empty: the operation then says what is wrong). */
export function readAccess(checkpointId: string): AccessRequest {
  return { checkpoints: checkpointId ? [{ id: checkpointId, access: "read" }] : [] };
}

/** Writing one checkpoint. */
export function writeAccess(checkpointId: string): AccessRequest {
  return { checkpoints: checkpointId ? [{ id: checkpointId, access: "write" }] : [] };
}

/** A Session is judged as itself and as what its start message runs: an iterative dump pre-dumps, then dumps. */
export function sessionAccess(first: SessionRequest): Judgement {
  const start = first.start;
  if (!start) {
    throw invalidArgument(
      "a session starts with a start message naming a dump, an iterative_dump or a restore",
    );
  }
  if (start.dump) return { rpcs: ["Session", "Dump"], access: dumpAccess(start.dump) };
  if (start.iterativeDump) {
    return { rpcs: ["Session", "PreDump", "Dump"], access: dumpAccess(start.iterativeDump) };
  }
  if (start.restore) return { rpcs: ["Session", "Restore"], access: restoreAccess(start.restore) };
  throw invalidArgument("start must name a dump, an iterative_dump or a restore");
}
