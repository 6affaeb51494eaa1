// CriuService.PushCheckpoint: this gateway exports a checkpoint straight into another gateway's
// ImportCheckpoint, the caller only watching. Paced end to end: a chunk is read from disk only
// when the target has taken the ones before it.
import type { handleServerStreamingCall, ServerWritableStream } from "@grpc/grpc-js";
import type { PushCheckpointRequest, PushCheckpointResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { describeIdentity } from "../auth/identity.js";
import type { GatewayConfig } from "../config.js";
import type { ExportPlan } from "../domain/checkpointTransfer/exportPlan.js";
import { trackTransfer } from "../domain/checkpointTransfer/progress.js";
import { GatewayError } from "../domain/errors.js";
import { BoundedWriter } from "./boundedWriter.js";
import { checkPushTarget, type ImportStream, openImportStream } from "./pushClient.js";
import { beginTransferCall } from "./transferCall.js";
import { toApiManifest } from "./transferCodec.js";
import { admitExport, CHUNK_BYTES, sendChunks, type TransferDeps } from "./transferHandlers.js";

export interface PushDeps extends TransferDeps {
  config: Pick<GatewayConfig, "pushTargets" | "pushTls">;
}

export function createPushHandler(
  deps: PushDeps,
): handleServerStreamingCall<PushCheckpointRequest, PushCheckpointResponse> {
  return (call) => {
    void servePush(call, deps);
  };
}

async function servePush(
  call: ServerWritableStream<PushCheckpointRequest, PushCheckpointResponse>,
  deps: PushDeps,
): Promise<void> {
  const rpc = beginTransferCall("PushCheckpoint", call, deps);
  const req = call.request;
  let plan: ExportPlan | undefined;
  let target: ImportStream | undefined;
  let tracker: ReturnType<typeof trackTransfer> | undefined;
  const progressWriter = new BoundedWriter(call, deps.stats);
  const onGone = () => {
    const reason = new GatewayError("CANCELLED", "the call was cancelled by the client");
    progressWriter.fail(reason);
    // The target then drops what it staged.
    target?.call.cancel();
  };
  rpc.signal.addEventListener("abort", onGone);
  try {
    // Only an admitted caller learns which targets this gateway may push to.
    const opened = await admitExport(rpc, deps, req, () => checkPushTarget(deps.config, req.target));
    plan = opened.plan;
    const total = opened.plan.totalBytes;
    tracker = trackTransfer(deps.events, "push", describeIdentity(rpc.identity), req.checkpointId);
    const progress = tracker;
    target = openImportStream(deps.config, req.target);
    const toTarget = new BoundedWriter(target.call, deps.stats);
    // A target that fails mid-stream stops the writes at once; its status is the push's.
    target.response.catch((err: unknown) => toTarget.fail(err));
    await toTarget.write({
      header: {
        checkpointId: req.targetCheckpointId,
        manifest: toApiManifest(opened.plan, opened.compression, CHUNK_BYTES),
      },
    });
    await sendChunks(opened.plan, opened.compression, toTarget, rpc.signal, (done) =>
      progress.progress(done, total)
        ? progressWriter.write({ progress: { bytesDone: done, bytesTotal: total } })
        : undefined,
    );
    target.call.end();
    const result = await target.response;
    tracker.finish();
    await progressWriter.write({ result });
    await progressWriter.drain();
    rpc.end();
    call.end();
  } catch (err) {
    target?.call.cancel();
    tracker?.finish(rpc.signal.aborted ? rpc.signal.reason : err);
    const failure = rpc.end(err);
    if (failure && !call.cancelled) call.emit("error", failure);
  } finally {
    rpc.signal.removeEventListener("abort", onGone);
    target?.close();
    await plan?.close();
  }
}
