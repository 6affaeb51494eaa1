// Page servers the gateway runs: each a child of a kept CRIU worker, writing the memory a dump on
// another host sends into a staged checkpoint, published when the whole dump has arrived.

import { isIP } from "node:net";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import type { SwrkWorker } from "../../criu/swrkWorker.js";
import { WorkerFailure } from "../../criu/swrkWorker.js";
import { CriuReqType, type CriuResp } from "../../criu/wire.js";
import { criuRefused, type FailureContext, workerFailed } from "../criuFailure.js";
import { toCriuOpts } from "../criuOptions.js";
import { type ErrorCode, GatewayError, invalidArgument } from "../errors.js";
import { ImageStore, PAGE_SERVER_LOG, type StagedDump } from "../imageStore.js";
import { decodeWaitStatus } from "../waitStatus.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import type { Probes } from "./probes.js";
import { beginOperation, type StartedOperation } from "./trackOperation.js";

export interface PageServerInput {
  checkpointId: string;
  /** An IP address to listen on; empty for all. */
  address: string;
  /** 0 lets the kernel choose. */
  port: number;
  options: CriuOptions | undefined;
}

/** A page server the gateway runs: a child of a kept CRIU worker. */
export interface PageServerInfo {
  checkpointId: string;
  pid: number;
  address: string;
  port: number;
  startTime: Date;
}

interface RunningServer {
  info: PageServerInfo;
  /** WAIT_PID has answered: the server is reaped, its pid no longer its own. */
  answered: boolean;
  stopped: boolean;
  /** Settles once the server has ended and its checkpoint is published or removed. */
  ended: Promise<void>;
}

export function createPageServers(kit: OperationKit, probes: Probes) {
  /** Page servers running now, by checkpoint id. */
  const servers = new Map<string, RunningServer>();

  /**
   * Starts a page server into a staged checkpoint. CRIU's PAGE_SERVER_CHLD forks the server as a
   * child of the worker and answers with its pid and port; keep_open keeps the worker, and the
   * WAIT_PID that follows on the same socket answers when the server exits, with its status (0
   * once a dump's pages were all received and flushed). The plain PAGE_SERVER form is not used:
   * it daemonizes the server away from the worker, so nobody could learn how it ended or reap it.
   */
  async function startPageServer(input: PageServerInput, ctx: OperationContext): Promise<PageServerInfo> {
    kit.validate(input, ctx);
    checkPageServerInput(input);
    await probes.requireLazyPageServing(input.options, "a page server");
    if (servers.has(input.checkpointId)) {
      throw new GatewayError(
        "ALREADY_EXISTS",
        `a page server already writes into checkpoint ${input.checkpointId}`,
      );
    }
    const criuVersion = await probes.criuVersionString();
    const staged = await kit.store.stage(input.checkpointId, undefined);
    const operation = beginOperation(kit.deps.events, "page-server", ctx, {
      pid: 0,
      checkpointId: input.checkpointId,
    });
    const started = Date.now();
    const worker = await kit.pool.acquire();
    const context: FailureContext = {
      action: `start a page server into checkpoint ${input.checkpointId}`,
      checkpointId: input.checkpointId,
      logTail: [],
    };
    let resp: CriuResp;
    try {
      const opts = toCriuOpts(input.options, { imagesDirFd: staged.fd, logFile: PAGE_SERVER_LOG });
      opts.ps = { port: input.port, ...(input.address === "" ? {} : { address: input.address }) };
      resp = await worker.request(
        { type: CriuReqType.PAGE_SERVER_CHLD, keepOpen: true, opts },
        { signal: ctx.signal },
      );
      if (!resp.success || resp.ps?.pid === undefined || resp.ps.port === undefined) {
        context.logTail = await kit.logTail(staged.path, PAGE_SERVER_LOG);
        throw criuRefused(resp, context);
      }
    } catch (err) {
      killGroup(worker);
      await worker.close();
      await staged.discard();
      const failure = err instanceof WorkerFailure ? workerFailed(err, "PAGE_SERVER_CHLD", context) : err;
      if (failure instanceof GatewayError) operation.finish(failure.code, failure.message);
      else operation.finish("INTERNAL", "internal error");
      throw failure;
    }
    const info: PageServerInfo = {
      checkpointId: input.checkpointId,
      pid: resp.ps.pid,
      address: input.address,
      port: resp.ps.port,
      startTime: new Date(started),
    };
    const entry: RunningServer = { info, answered: false, stopped: false, ended: Promise.resolve() };
    entry.ended = watch(entry, worker, staged, criuVersion, operation, ctx);
    servers.set(info.checkpointId, entry);
    return info;
  }

  /** Waits for the server to end, then publishes what it received (a whole dump) or removes it. */
  async function watch(
    entry: RunningServer,
    worker: SwrkWorker,
    staged: StagedDump,
    criuVersion: string,
    operation: StartedOperation,
    ctx: OperationContext,
  ): Promise<void> {
    let outcome: { code: ErrorCode | "OK"; message: string };
    try {
      const waited = await worker.request({ type: CriuReqType.WAIT_PID, pid: entry.info.pid });
      entry.answered = true;
      const status =
        waited.success && waited.status !== undefined ? decodeWaitStatus(waited.status) : undefined;
      if (status?.exitCode === 0 && !entry.stopped) {
        await staged.publish({
          rootPid: 0,
          parentId: undefined,
          criuVersion,
          leaveRunning: false,
          kind: "pages",
        });
        outcome = { code: "OK", message: "" };
      } else if (entry.stopped) {
        outcome = { code: "CANCELLED", message: "the page server was stopped" };
      } else {
        const how = status?.signal ? `signal ${status.signal}` : `exit status ${status?.exitCode}`;
        outcome = {
          code: "ABORTED",
          message: `the page server ended without receiving a whole dump (${how})`,
        };
      }
    } catch {
      killGroup(worker);
      outcome = { code: "INTERNAL", message: "the page server's worker failed" };
    } finally {
      entry.answered = true;
      await worker.close();
      await staged.discard();
      servers.delete(entry.info.checkpointId);
      ctx.onServerEnded?.();
    }
    operation.finish(outcome.code, outcome.message);
  }

  return {
    startPageServer,

    async stopPageServer(checkpointId: string): Promise<void> {
      ImageStore.validateId(checkpointId);
      const entry = servers.get(checkpointId);
      if (!entry)
        throw new GatewayError("NOT_FOUND", `no page server writes into checkpoint ${checkpointId}`);
      stop(entry);
      await entry.ended;
    },

    listPageServers(): PageServerInfo[] {
      return [...servers.values()]
        .map((e) => e.info)
        .sort(
          (a, b) =>
            a.startTime.getTime() - b.startTime.getTime() || a.checkpointId.localeCompare(b.checkpointId),
        );
    },

    /** Stops every page server and waits until each has ended (for shutdown). */
    async stopAll(): Promise<void> {
      const running = [...servers.values()];
      for (const entry of running) stop(entry);
      await Promise.all(running.map((e) => e.ended));
    },
  };
}

function checkPageServerInput(input: PageServerInput): void {
  if (input.options?.ps !== undefined) {
    throw invalidArgument("options.ps is for a dump; a page server listens on address and port");
  }
  if (!Number.isInteger(input.port) || input.port < 0 || input.port > 65535) {
    throw invalidArgument(`port must be 0 to 65535, not ${input.port}`);
  }
  if (input.address !== "" && isIP(input.address) === 0) {
    throw invalidArgument(`address ${JSON.stringify(input.address.slice(0, 64))} is not an IP address`);
  }
}

/** Asks a server to end; WAIT_PID then tells how it did. */
function stop(entry: RunningServer): void {
  // The server is the worker's unreaped child until WAIT_PID answers, so its pid is its own.
  if (entry.answered || entry.stopped) return;
  entry.stopped = true;
  try {
    process.kill(entry.info.pid, "SIGTERM");
  } catch {
    // Exited meanwhile; WAIT_PID reports how.
  }
}

/** Kills the worker's process group: the worker and a server it may have forked already. */
function killGroup(worker: SwrkWorker): void {
  if (worker.pid === undefined) return;
  try {
    process.kill(-worker.pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}
