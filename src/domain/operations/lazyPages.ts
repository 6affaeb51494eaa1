// The lazy-pages daemon of a post-copy restore: CRIU's process that pulls a restored tree's memory
// from the dump's page server. It is started as soon as the restore's directory exists, so that
// CRIU's start-up is over by the time the images are in (src/criu/lazyPagesDaemon.ts); it reads
// them from a scratch directory of the image store, removed once it has ended.
import { LazyPagesDaemon } from "../../criu/lazyPagesDaemon.js";
import { GatewayError } from "../errors.js";
import type { OperationKit } from "./operationKit.js";

export interface LazyPages {
  readonly daemon: LazyPagesDaemon;
  /** Stops the daemon, waits for it to be reaped and removes its directory. */
  close(): Promise<void>;
}

export function createLazyPages(kit: OperationKit) {
  /**
   * Starts the daemon for a restore whose work directory is `workDir` (a post-copy restore's
   * checkpoint directory), pulling pages through `pageSocket`, which it inherits.
   */
  return async function startLazyPages(workDir: string, pageSocket: number): Promise<LazyPages> {
    const view = await kit.store.scratch("lazy-pages");
    let daemon: LazyPagesDaemon;
    try {
      daemon = LazyPagesDaemon.start({
        criuBin: kit.deps.criuBin,
        viewDir: view.path,
        workDir,
        pageSocket,
        logLevel: kit.deps.criuLogLevel,
      });
    } catch (err) {
      await view.discard();
      throw new GatewayError(
        "INTERNAL",
        `cannot start CRIU's lazy-pages daemon: ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    return {
      daemon,
      async close() {
        daemon.kill();
        await daemon.exited;
        await view.discard();
      },
    };
  };
}
