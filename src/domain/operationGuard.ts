// What a caller's authorization adds to an operation. It is decided outside the domain (by the
// authorization layer) and handed in with the call; the domain runs these checks at the moments
// only it can see: after validation, at CRIU's post-dump, before and during a restore.

import type { OptionClass } from "./criuOptions.js";
import type { ProcessRecord } from "./processTree.js";

export interface OperationGuard {
  /** Option classes this caller may use. */
  optionClasses: ReadonlySet<OptionClass>;
  /**
   * Reads the tree a dump froze, at CRIU's post-dump callback (processes stopped, images written,
   * nothing published yet), and throws to refuse it: the dump is then vetoed and rolled back.
   * What it returns is kept with the checkpoint.
   */
  frozenTree(rootPid: number): Promise<ProcessRecord[]>;
  /** Present for callers whose restores are confined (everyone but administrators). */
  confinedRestore?: RestoreConfinement;
}

/** The checks that hold a restore to what the restored processes could have opened themselves. */
export interface RestoreConfinement {
  /** Judges a checkpoint's images before CRIU starts; throws a GatewayError to refuse. */
  checkImages(imagesDir: string, checkpointId: string): Promise<void>;
  /** Judges the re-created tree at CRIU's post-restore callback, before it runs; throws to veto. */
  checkRestoredTree(rootPid: number, recorded: readonly ProcessRecord[]): Promise<void>;
}
