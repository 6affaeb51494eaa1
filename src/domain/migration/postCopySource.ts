// POST_COPY on the source gateway: dump the tree without its memory and keep it stopped, send the
// images, let the target restore and run it, then serve its memory from CRIU's page server through
// the call until the target has all of it.
//
// Before the commit every failure continues the tree here. At the commit the copy here is killed
// (its memory stays in CRIU's page server, which holds it in pipes), so that the tree never runs
// on both hosts; from then on, a failure before the last page has moved loses the process.

import type { Socket } from "node:net";
import { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import type { OperationContext, ServedImages } from "../criuOperations.js";
import { GatewayError } from "../errors.js";
import type { MigrateInput, MigrateSourceDeps, MigrationEvent } from "./migrateSource.js";
import { type ControlMessages, PageTunnel, splitPages } from "./pageTunnel.js";
import { elapsedUs, expect, released, sendImages } from "./sourceSteps.js";
import { StoppedTree } from "./stoppedTree.js";
import type { FromTarget, TargetLink } from "./targetLink.js";

type Emit = (event: MigrationEvent) => Promise<void>;

/** Bytes of one page (x86_64, aarch64 with 4 KiB pages): how page server traffic counts as pages. */
const PAGE_BYTES = 4096;
/** How often memory progress is reported, at most. */
const PROGRESS_EVERY_MS = 200;

export async function postCopyFromSource(
  input: MigrateInput,
  deps: MigrateSourceDeps,
  ctx: OperationContext,
  emit: Emit,
  link: TargetLink,
): Promise<void> {
  const started = process.hrtime.bigint();
  // No warm worker starts while the tree is frozen: a spawn holds the event loop for milliseconds.
  const releaseRefills = deps.holdRefills();
  const served = servedSignal();
  const dumping = deps.lazyDump(
    {
      options: CriuOptions.fromPartial({ ...input.dumpOptions, pid: input.pid }),
      checkpointId: input.checkpointId,
      onServing: served.resolve,
    },
    ctx,
  );
  dumping.catch(() => undefined);
  let tree: StoppedTree | undefined;
  let socket: Socket | undefined;
  let tunnel: PageTunnel | undefined;
  let committed = false;
  try {
    const images = await Promise.race([served.promise, dumping.then(endedEarly)]);
    socket = images.socket;
    const dumpTimeUs = elapsedUs(started);
    tree = StoppedTree.hold(
      deps.store.stoppedTreesDir,
      input.checkpointId,
      images.processes.map((p) => p.pid),
      "continue",
    );
    await emit({ kind: "frozen", pids: [...tree.pids], dumpStatistics: undefined });
    const transferStarted = process.hrtime.bigint();
    const sent = await sendImages(link, images.dir);
    const transferTimeUs = elapsedUs(transferStarted);
    await emit({ kind: "images-sent", ...sent });
    const progress = memoryProgress(images.lazyPages, emit);
    tunnel = new PageTunnel(images.socket, (data) => link.send({ kind: "pages", data }), {
      sent: progress.sent,
    });
    const open = tunnel;
    const control = splitPages(
      () => link.next(),
      (data) => open.deliver(data),
    );
    const restoreStarted = process.hrtime.bigint();
    const restored = expect(await control.next(), "restored");
    await emit({ kind: "restored", targetPid: restored.targetPid, restoreStatistics: restored.statistics });
    ctx.signal?.throwIfAborted();
    // From here a restart must not continue the copy here: the target may run it.
    tree.forget();
    await link.send({ kind: "commit" });
    committed = true;
    // Killed the moment the target may run it: CRIU, should its serving fail, would continue it.
    tree.kill();
    tree = undefined;
    const running = expect(await control.next(), "running");
    const restoreTimeUs = elapsedUs(restoreStarted);
    const frozenTimeUs = elapsedUs(started);
    releaseRefills();
    await allMemoryMoved(control, dumping);
    progress.finish();
    await released(emit, running.targetPid, {
      mode: input.mode,
      frozenTimeUs,
      dumpTimeUs,
      transferTimeUs,
      restoreTimeUs,
      totalTimeUs: elapsedUs(started),
      imageBytes: sent.bytes,
      lazyPages: images.lazyPages,
    });
    link.close();
  } catch (err) {
    releaseRefills();
    link.abort();
    tunnel?.close();
    socket?.destroy();
    if (!committed) {
      // CRIU's page server reads end-of-file and the dump ends, detached from the tree.
      const dumpFailure = await dumping.then(
        () => undefined,
        (failure: unknown) => failure,
      );
      tree?.resume();
      throw beforeTheSwitch(err, dumpFailure);
    }
    throw await processLost(err, emit);
  }
}

/** Resolves with the images once CRIU serves the memory. */
function servedSignal(): { promise: Promise<ServedImages>; resolve(images: ServedImages): void } {
  let resolve: (images: ServedImages) => void = () => undefined;
  const promise = new Promise<ServedImages>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function endedEarly(): never {
  throw new GatewayError("INTERNAL", "CRIU's post-copy dump ended before it served the tree's memory");
}

/**
 * Waits for the target to end the call (every page is in: its lazy-pages daemon finished), then
 * for CRIU's dump here, which ends once the daemon has closed the connection.
 */
async function allMemoryMoved(
  control: ControlMessages<Exclude<FromTarget, { kind: "pages" }>>,
  dumping: Promise<unknown>,
): Promise<void> {
  const extra = await control.next();
  if (extra !== undefined) {
    throw new GatewayError("INTERNAL", `the target answered ${extra.kind} after running`);
  }
  // The tree here was killed at the commit; CRIU may report that as a failure of its own, which
  // changes nothing: the target has every page.
  await dumping.catch(() => undefined);
}

/** Reports pages moved, at most every PROGRESS_EVERY_MS, and once more at the end. */
function memoryProgress(pagesTotal: number, emit: Emit) {
  let last = 0;
  let bytes = 0;
  const report = () => {
    last = Date.now();
    const pagesMoved = Math.min(pagesTotal, Math.floor(bytes / PAGE_BYTES));
    void emit({ kind: "memory", pagesMoved, pagesTotal }).catch(() => undefined);
  };
  return {
    sent(total: number) {
      bytes = total;
      if (Date.now() - last >= PROGRESS_EVERY_MS) report();
    },
    finish() {
      bytes = pagesTotal * PAGE_BYTES;
      report();
    },
  };
}

/** A failure before the commit, as the caller should read it: the tree runs on here. */
function beforeTheSwitch(err: unknown, dumpFailure: unknown): unknown {
  if (err instanceof GatewayError) return err;
  if (dumpFailure instanceof GatewayError) return dumpFailure;
  const why = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    "ABORTED",
    `POST_COPY migration stopped before the target ran the tree (${why}); the tree continues on this host`,
    undefined,
    { cause: err },
  );
}

/** After the commit: the tree ran on the target without all of its memory, and is gone. */
async function processLost(err: unknown, emit: Emit): Promise<GatewayError> {
  const why = err instanceof Error ? err.message : String(err);
  const reason = `the migration failed after the tree ran on the target, before all of its memory had moved (${why}); the target kills the tree, which cannot run without it`;
  await emit({ kind: "process-lost", reason }).catch(() => undefined);
  return new GatewayError("DATA_LOSS", `POST_COPY migration lost the process: ${reason}`, undefined, {
    cause: err,
  });
}
