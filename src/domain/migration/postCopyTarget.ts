// POST_COPY on the target gateway: receive the images (without the memory), restore the tree
// stopped with CRIU's lazy-pages daemon pulling its memory from the source through the call, run it
// on the commit, and end the call once every page is in.
//
// Before the commit, whatever ends the call kills the restored tree: the source still has it.
// After the commit the tree runs here but part of its memory is still on the source; should the
// source, the link or the daemon fail before the last page, the tree is killed rather than left
// blocked on a page that will never come, and the call ends with DATA_LOSS.

import type { LazyPagesDaemon } from "../../criu/lazyPagesDaemon.js";
import { PageRequestWatcher } from "../../criu/pageServerRequests.js";
import { pageSocketPair } from "../../criu/pageSocket.js";
import type { LazyPages, OperationContext } from "../criuOperations.js";
import { GatewayError } from "../errors.js";
import { processTree } from "../processTree.js";
import type { StagedDump } from "../stagedDump.js";
import type { AcceptMigrationDeps } from "./acceptMigration.js";
import { expectNext, receiveInto } from "./acceptMigration.js";
import { type EarlyRestore, startEarlyRestore } from "./earlyRestore.js";
import { type ControlMessages, PageTunnel, splitPages } from "./pageTunnel.js";
import { StoppedTree } from "./stoppedTree.js";
import type { MigrationHeader, SourceLink, ToTarget } from "./targetLink.js";

export async function acceptPostCopy(
  source: SourceLink,
  deps: AcceptMigrationDeps,
  header: MigrationHeader,
  ctx: OperationContext,
): Promise<void> {
  const pair = pageSocketPair();
  const requests = new PageRequestWatcher();
  const tunnel = new PageTunnel(pair.socket, (data) => source.send({ kind: "pages", data }), {
    read: (data) => requests.feed(data),
  });
  const control = splitPages(
    () => source.next(),
    (data) => tunnel.deliver(data),
  );
  control.ended.catch(() => undefined);
  const stop = stopSignal(tunnel, requests, control);
  // No warm worker starts until the tree runs here: a spawn holds the event loop for milliseconds.
  const releaseRefills = deps.holdRefills();
  let staged: StagedDump | undefined;
  let lazy: LazyPages | undefined;
  let restore: EarlyRestore | undefined;
  let tree: StoppedTree | undefined;
  let running = false;
  try {
    // Staged, never published: the images serve this restore only, and go with the call.
    const dir = await deps.store.stage(header.checkpointId, undefined);
    staged = dir;
    // The daemon and the restore start while the source still dumps; both wait for the images.
    lazy = await deps.startLazyPages(dir.path, pair.criuEnd);
    pair.closeCriuEnd();
    stopsDaemon(stop, lazy.daemon);
    restore = await startEarlyRestore(deps, header, dir, ctx);
    const receiving = receiveInto(control, dir.path);
    receiving.catch(() => undefined);
    // A restore refused at once (by the policy, say) ends the migration without the images.
    await Promise.race([receiving, restore.restored.then(() => receiving)]);
    // The daemon first: the restore meets it on its socket once it has read the images.
    await imagesToDaemon(lazy, dir.path, header.checkpointId);
    await restore.imagesIn(dir.path);
    const restored = await restore.restored;
    // The tree is stopped until the commit: nothing of it can wait for a page. (The restore
    // itself can: CRIU's restorer touches the tree's memory.) The daemon's background requests
    // wait too, so that the commit, which comes the other way, does not queue behind megabytes
    // of their answers.
    tunnel.hold();
    const pids = (await processTree(restored.pid)).map((p) => p.pid);
    tree = StoppedTree.hold(deps.store.stoppedTreesDir, header.checkpointId, pids, "kill");
    await source.send({ kind: "restored", targetPid: restored.pid, statistics: restored.statistics });
    expectNext(await control.next(), "commit");
    tree.resume();
    tunnel.release();
    running = true;
    releaseRefills();
    await source.send({ kind: "running", targetPid: restored.pid });
    await everyPageIn(lazy.daemon, control, stop);
  } catch (err) {
    tree?.kill();
    if (!running) throw err;
    throw new GatewayError(
      "DATA_LOSS",
      `the migrated tree ran here without all of its memory and was killed: ${err instanceof Error ? err.message : String(err)}`,
      undefined,
      { cause: err },
    );
  } finally {
    releaseRefills();
    await restore?.close();
    await lazy?.close();
    tunnel.close();
    pair.closeCriuEnd();
    await staged?.discard();
  }
}

/**
 * Aborts when the memory can no longer come. CRIU's daemon does not notice a page server that
 * went away (it polls the closed socket on): the gateway does, and stops it. A server that closes
 * after the daemon's last request (the close of a daemon with every page) has finished; one that
 * closes before, or a source that goes, has left memory behind.
 */
function stopSignal(
  tunnel: PageTunnel,
  requests: PageRequestWatcher,
  control: ControlMessages<unknown>,
): AbortSignal {
  const stop = new AbortController();
  tunnel.remoteEnded.then(() => {
    if (!requests.closed)
      stop.abort(new Error("the source's CRIU page server went away before every page was in"));
  });
  control.ended.catch((err: unknown) =>
    stop.abort(new Error(`the source gateway went away (${(err as Error).message})`)),
  );
  return stop.signal;
}

function stopsDaemon(stop: AbortSignal, daemon: LazyPagesDaemon): void {
  if (stop.aborted) daemon.kill();
  else stop.addEventListener("abort", () => daemon.kill(), { once: true });
}

async function imagesToDaemon(lazy: LazyPages | undefined, dir: string, checkpointId: string): Promise<void> {
  if (!lazy) throw new Error("no lazy-pages daemon was started");
  try {
    await lazy.daemon.imagesIn(dir);
  } catch (err) {
    throw new GatewayError(
      "INTERNAL",
      `post-copy migration ${checkpointId}: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
}

/** Resolves once the lazy-pages daemon has every page; rejects when it fails or the source goes. */
async function everyPageIn(
  daemon: LazyPagesDaemon,
  control: ControlMessages<Exclude<ToTarget, { kind: "pages" }>>,
  stop: AbortSignal,
): Promise<void> {
  const sourceGone = control.next().then((message) => {
    throw message === undefined
      ? new Error("the source gateway ended the migration before every page was in")
      : new Error(`the source sent ${message.kind} after the commit`);
  });
  sourceGone.catch(() => undefined);
  const stopped = new Promise<never>((_resolve, reject) => {
    const fail = () => reject(stop.reason);
    if (stop.aborted) fail();
    else stop.addEventListener("abort", fail, { once: true });
  });
  stopped.catch(() => undefined);
  const exit = await Promise.race([daemon.exited, sourceGone, stopped]);
  if (exit.code !== 0) {
    throw new Error(
      `CRIU's lazy-pages daemon ended with ${exit.code ?? exit.signal} before every page was in (see its log, lazy-pages.log; ${daemon.outputTail.trim()})`,
    );
  }
}
