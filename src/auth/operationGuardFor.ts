// The guard an admitted call hands the domain's operations: what only the operation can see (the
// frozen tree at post-dump, the images and the re-created tree of a restore) judged by the grant.
import { permissionDenied } from "../domain/errors.js";
import type { OperationGuard } from "../domain/operationGuard.js";
import { processTree } from "../domain/processTree.js";
import { type Grant, processDenial } from "./policy.js";
import { checkImagesForConfinedRestore, checkRestoredTree } from "./restoreConfinement.js";

/** The guard for a caller with this grant: administrators' restores are not confined. */
export function operationGuardFor(grant: Grant): OperationGuard {
  return {
    optionClasses: grant.optionClasses,
    frozenTree: async (rootPid) => {
      const tree = await processTree(rootPid);
      if (!grant.admin) {
        for (const p of tree) {
          const denial = processDenial(grant, p);
          if (denial)
            throw permissionDenied(`the frozen tree under pid ${rootPid} holds ${denial}; dump refused`);
        }
      }
      return tree;
    },
    ...(grant.admin
      ? {}
      : { confinedRestore: { checkImages: checkImagesForConfinedRestore, checkRestoredTree } }),
  };
}
