// The dump of a post-copy migration: CRIU writes every image but the memory, then serves the
// memory from its page server, on a socket the gateway hands it, until the other side has pulled
// all of it. The tree stays stopped (leave_stopped) throughout: the migration decides whether it
// is continued here or killed.
//
// No checkpoint comes of it: images without their memory restore nowhere but through that page
// server, so they live in a scratch directory that is removed when the dump ends.

import { promises as fs, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import type { CriuOptions, DumpStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { lazyPageCount, PAGEMAP_FILE } from "../../criu/images.js";
import { type CriuReq, CriuReqType } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { DUMP_LOG } from "../imageStore.js";
import { type ProcessRecord, processTree } from "../processTree.js";
import { callbackBridge } from "./callbackBridge.js";
import { type CheckedDump, checkDumpInput } from "./dumpChecks.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import type { Probes } from "./probes.js";
import { dumpStatistics } from "./statistics.js";
import { trackOperation } from "./trackOperation.js";

export interface LazyDumpInput {
  /** The caller's options for the dump, with pid; the lazy-pages settings are the gateway's. */
  options: CriuOptions | undefined;
  /** The id the migration runs under, for events and errors. */
  checkpointId: string;
  /**
   * Told once CRIU serves the memory (its status-ready callback): `dir` then holds every other
   * image, complete, until the dump ends.
   */
  onServing(images: ServedImages): void;
}

export interface ServedImages {
  dir: string;
  /** The frozen tree, read at post-dump. */
  processes: ProcessRecord[];
  /** Pages left for the page server to serve. */
  lazyPages: number;
  /** The gateway's end of the page server's connection: what CRIU serves, the caller carries. */
  socket: Socket;
}

export interface LazyDumpResult {
  statistics: DumpStatistics | undefined;
}

/** The worker's fd for the page socket (WorkerPool.acquireServing). */
const PAGE_SOCKET_FD = 4;
/** Where the gateway tells CRIU to use that socket: RPC has no field for it with lazy_pages. */
const CONFIG_FILE = ".lazy-dump.conf";

export function createLazyDump(kit: OperationKit, probes: Probes) {
  return function lazyDump(input: LazyDumpInput, ctx: OperationContext): Promise<LazyDumpResult> {
    const pid = input.options?.pid ?? 0;
    return trackOperation(
      kit,
      "dump",
      ctx,
      { pid, checkpointId: input.checkpointId },
      async (operationId) => {
        const checked = await checkDumpInput(
          kit,
          probes,
          "dump",
          { checkpointId: input.checkpointId, parentCheckpointId: undefined, options: input.options },
          ctx,
        );
        const unlock = await kit.lockTree(checked.pid, {
          operationId,
          kind: "dump",
          checkpointId: input.checkpointId,
        });
        const scratch = await kit.store.scratch("lazy-dump");
        try {
          return await serveLazily(kit, input, ctx, operationId, scratch, checked);
        } finally {
          await scratch.discard();
          unlock();
        }
      },
      (result) => ({ dumpStatistics: result.statistics }),
    );
  };
}

async function serveLazily(
  kit: OperationKit,
  input: LazyDumpInput,
  ctx: OperationContext,
  operationId: string,
  scratch: { path: string; fd: number },
  checked: CheckedDump,
): Promise<LazyDumpResult> {
  const { pid } = checked;
  const context: FailureContext = {
    action: `post-copy dump pid ${pid}`,
    pid,
    checkpointId: input.checkpointId,
    logTail: [],
  };
  const config = join(scratch.path, CONFIG_FILE);
  // A few bytes, written while the tree is about to freeze: no trip through the thread pool.
  writeFileSync(config, `ps-socket ${PAGE_SOCKET_FD}\n`, { mode: 0o600 });
  const req: CriuReq = {
    type: CriuReqType.DUMP,
    opts: {
      ...kit.criuOpts(input.options, { imagesDirFd: scratch.fd, logFile: DUMP_LOG, notifyScripts: true }),
      lazyPages: true,
      leaveStopped: true,
      configFile: config,
    },
  };
  let processes: ProcessRecord[] = [];
  const frozenTree = ctx.guard?.frozenTree ?? processTree;
  // A warm worker already holds a stream socket as its fd 4: no CRIU start-up here, whose time
  // a migration counts as frozen.
  const { worker, socket } = await kit.acquireServing(ctx.signal, context);
  let served = false;
  try {
    const send = callbackBridge(kit, worker, operationId, ctx, input.options);
    const resp = await send(
      req,
      context,
      { dir: scratch.path, file: DUMP_LOG },
      {
        gate: async (script) => {
          if (script === "post-dump") processes = await frozenTree(pid);
        },
        commit: async (script) => {
          if (script !== "status-ready") return;
          const lazyPages = await countLazyPages(scratch.path);
          served = true;
          input.onServing({ dir: scratch.path, processes, lazyPages, socket });
        },
      },
    );
    if (!resp.success) {
      context.logTail = await kit.logTail(scratch.path, DUMP_LOG);
      throw criuRefused(resp, context);
    }
    return { statistics: await dumpStatistics(scratch.path) };
  } finally {
    // Not handed over: nobody carries it.
    if (!served) socket.destroy();
    await worker.close();
  }
}

/** The pages of every pagemap image in `dir` that CRIU left to serve. */
async function countLazyPages(dir: string): Promise<number> {
  let pages = 0;
  for (const name of await fs.readdir(dir)) {
    if (PAGEMAP_FILE.test(name)) pages += lazyPageCount(await fs.readFile(join(dir, name)));
  }
  return pages;
}
