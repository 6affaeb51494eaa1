// The gateway's operations, the domain's public face: each runs `criu swrk` workers from one
// pool, checks its input first, and turns every outcome into a result or a GatewayError. No gRPC
// here; no socket details either. The operations themselves live in ./operations/, one module
// per kind; this file composes them and exports every type the gRPC side needs.

import { WorkerPool } from "../criu/workerPool.js";
import { describeRecovered } from "./imageStore.js";
import { createCheckpointFiles } from "./operations/checkpointFiles.js";
import { createCpuinfo } from "./operations/cpuinfo.js";
import { createDump } from "./operations/dump.js";
import { createIterativeDump } from "./operations/iterativeDump.js";
import { createLazyDump } from "./operations/lazyDump.js";
import { createLazyPages } from "./operations/lazyPages.js";
import type { OperationsDeps } from "./operations/operationContext.js";
import { createOperationKit } from "./operations/operationKit.js";
import { createPageServers } from "./operations/pageServers.js";
import { createProbes } from "./operations/probes.js";
import { createRestore } from "./operations/restore.js";
import { beginOperation } from "./operations/trackOperation.js";
import { createWaitPid } from "./operations/waitPid.js";

export type { OperationGuard, RestoreConfinement } from "./operationGuard.js";
export { LOG_MAX_BYTES, type LogKind } from "./operations/checkpointFiles.js";
export type { CpuinfoInput } from "./operations/cpuinfo.js";
export type { DumpInput } from "./operations/dumpChecks.js";
export type { DumpResult } from "./operations/dumpStep.js";
export { preDumpId } from "./operations/iterativeDump.js";
export type { LazyDumpInput, LazyDumpResult, ServedImages } from "./operations/lazyDump.js";
export type { LazyPages } from "./operations/lazyPages.js";
export type {
  CallbackQuestion,
  NotifyAnswer,
  OperationContext,
  OperationsDeps,
} from "./operations/operationContext.js";
export type { PageServerInfo, PageServerInput } from "./operations/pageServers.js";
export type { CriuVersion, Features } from "./operations/probes.js";
export type { RestoreInput, RestoreResult } from "./operations/restore.js";

export type CriuOperations = ReturnType<typeof createCriuOperations>;

/** Each staged dump the store found at start-up, as a dump the gateway finished on its own. */
function publishRecovery(deps: OperationsDeps): void {
  for (const r of deps.store.recovered) {
    const operation = beginOperation(
      deps.events,
      "dump",
      { caller: "gateway (start-up recovery)" },
      {
        pid: 0,
        checkpointId: r.id,
      },
    );
    operation.finish(r.outcome === "removed" ? "ABORTED" : "OK", describeRecovered(r));
  }
}

export function createCriuOperations(deps: OperationsDeps) {
  const pool = new WorkerPool({
    criuBin: deps.criuBin,
    idleWorkerMs: deps.idleWorkerMs,
    maxWorkers: deps.maxConcurrentOperations,
    maxQueued: deps.maxQueuedOperations,
    warmWorkers: deps.warmWorkers,
    warmWorkerIdleMs: deps.warmWorkerIdleMs,
  });
  const kit = createOperationKit(deps, pool);
  const probes = createProbes(kit);
  const dumps = createDump(kit, probes);
  const cpuinfo = createCpuinfo(kit, probes);
  const pageServers = createPageServers(kit, probes);
  const files = createCheckpointFiles(deps.store);
  publishRecovery(deps);

  return {
    version: probes.version,
    /** CRIU's version as checkpoints record it ("4.2.1"). */
    criuVersion: probes.criuVersionString,
    check: probes.check,
    featureCheck: probes.featureCheck,
    dump: dumps.dump,
    preDump: dumps.preDump,
    lazyDump: createLazyDump(kit, probes),
    iterativeDump: createIterativeDump(kit, probes),
    restore: createRestore(kit),
    startLazyPages: createLazyPages(kit),
    /**
     * Holds back the start of warm workers until the returned function is called: for the freeze
     * of a post-copy migration, tens of milliseconds, in which a spawn holds the event loop.
     */
    holdRefills: () => pool.holdRefills(),
    checkpointLog: files.checkpointLog,
    waitPid: createWaitPid(kit),
    cpuinfoDump: cpuinfo.cpuinfoDump,
    cpuinfoCheck: cpuinfo.cpuinfoCheck,
    startPageServer: pageServers.startPageServer,
    stopPageServer: pageServers.stopPageServer,
    listPageServers: pageServers.listPageServers,
    exportImages: files.exportImages,
    importImages: files.importImages,
    /**
     * Stops every page server and waits until every worker has exited (used by shutdown, after
     * in-flight calls were aborted).
     */
    async drain(): Promise<void> {
      await Promise.all([pageServers.stopAll(), pool.drain()]);
    },
    /** The pid of the worker the next call gets (warm, or kept open after a VERSION), if any. */
    idleWorkerPid: () => pool.idlePid(),
    /** Pids of the workers started and waiting for a call, oldest first. */
    readyWorkerPids: () => pool.readyPids(),
    /** Pids of the workers running now. */
    workerPids: () => pool.pids(),
  };
}
