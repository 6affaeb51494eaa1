// CpuinfoDump and CpuinfoCheck: a description of this host's CPU kept as a checkpoint, and a check
// that this host's CPU can run what one describes.

import { join } from "node:path";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { CPUINFO_FILE } from "../../criu/images.js";
import { CriuReqType, type CriuResp } from "../../criu/wire.js";
import { criuRefused, type FailureContext } from "../criuFailure.js";
import { GatewayError } from "../errors.js";
import {
  type CheckpointInfo,
  CPUINFO_CHECK_LOG,
  CPUINFO_DUMP_LOG,
  type OpenDirectory,
} from "../imageStore.js";
import type { OperationContext } from "./operationContext.js";
import type { OperationKit } from "./operationKit.js";
import { pathExists } from "./pathExists.js";
import type { Probes } from "./probes.js";
import { intoStagedCheckpoint } from "./stagedCheckpoint.js";
import { trackOperation } from "./trackOperation.js";

export interface CpuinfoInput {
  checkpointId: string;
  options: CriuOptions | undefined;
}

const ENOTSUP = 95;

export function createCpuinfo(kit: OperationKit, probes: Probes) {
  const { events } = kit.deps;
  const exchange = (
    type: CriuReqType,
    place: { dir: OpenDirectory; logFile: string },
    input: CpuinfoInput,
    ctx: OperationContext,
    context: FailureContext,
  ) => kit.exchangeIn(type, input.options, place, ctx.signal, context, cpuinfoRefused);

  async function cpuinfoDumpNow(input: CpuinfoInput, ctx: OperationContext): Promise<CheckpointInfo> {
    kit.validate(input, ctx);
    const criuVersion = await probes.criuVersionString();
    const context: FailureContext = {
      action: "record this host's CPU description",
      checkpointId: input.checkpointId,
      logTail: [],
    };
    const { checkpoint } = await intoStagedCheckpoint(
      kit.store,
      input.checkpointId,
      undefined,
      async (staged) => {
        await exchange(
          CriuReqType.CPUINFO_DUMP,
          { dir: staged, logFile: CPUINFO_DUMP_LOG },
          input,
          ctx,
          context,
        );
        const meta = {
          rootPid: 0,
          parentId: undefined,
          criuVersion,
          leaveRunning: false,
          kind: "cpuinfo",
        } as const;
        return { meta, extra: undefined };
      },
    );
    return checkpoint;
  }

  async function cpuinfoCheckNow(input: CpuinfoInput, ctx: OperationContext): Promise<void> {
    kit.validate(input, ctx);
    const opened = await kit.store.openCheckpoint(input.checkpointId);
    try {
      if (!(await pathExists(join(opened.path, CPUINFO_FILE)))) {
        throw new GatewayError(
          "FAILED_PRECONDITION",
          `checkpoint ${input.checkpointId} holds no CPU description; make one with CpuinfoDump`,
        );
      }
      const context: FailureContext = {
        action: `run on this host's CPU what checkpoint ${input.checkpointId} describes`,
        checkpointId: input.checkpointId,
        logTail: [],
      };
      await exchange(
        CriuReqType.CPUINFO_CHECK,
        { dir: opened, logFile: CPUINFO_CHECK_LOG },
        input,
        ctx,
        context,
      );
    } finally {
      await opened.close();
    }
  }

  return {
    cpuinfoDump: (input: CpuinfoInput, ctx: OperationContext): Promise<CheckpointInfo> =>
      trackOperation(events, "cpuinfo-dump", ctx, { pid: 0, checkpointId: input.checkpointId }, () =>
        cpuinfoDumpNow(input, ctx),
      ),
    cpuinfoCheck: (input: CpuinfoInput, ctx: OperationContext): Promise<void> =>
      trackOperation(events, "cpuinfo-check", ctx, { pid: 0, checkpointId: input.checkpointId }, () =>
        cpuinfoCheckNow(input, ctx),
      ),
  };
}

/** CRIU's cpuinfo requests report ENOTSUP when CRIU has no CPU comparison for this architecture. */
function cpuinfoRefused(resp: CriuResp, context: FailureContext): GatewayError {
  const err = criuRefused(resp, context);
  if (resp.crErrno !== ENOTSUP) return err;
  return new GatewayError(
    "FAILED_PRECONDITION",
    `CRIU cannot ${context.action}: cpuinfo dump and check are not supported on this CPU architecture`,
    err.criu,
  );
}
