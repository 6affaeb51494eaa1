// CriuService's ExportCheckpoint and ImportCheckpoint: a checkpoint out of the image store as a
// server stream, and into it (under a new id) from a client stream. Both paced by the slower
// side: at most a few chunks are held, whatever the checkpoint's size.
import type {
  handleClientStreamingCall,
  handleServerStreamingCall,
  ServerReadableStream,
  ServerWritableStream,
  sendUnaryData,
} from "@grpc/grpc-js";
import type {
  ExportCheckpointRequest,
  ExportCheckpointResponse,
  ImportCheckpointRequest,
  ImportCheckpointResponse,
  TransferCompression,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { Gatekeeper } from "../auth/gatekeeper.js";
import { describeIdentity } from "../auth/identity.js";
import { CheckpointImport } from "../domain/checkpointTransfer/checkpointImport.js";
import { type Compression, compressChunk, frameBound } from "../domain/checkpointTransfer/compression.js";
import {
  ChunkBuffers,
  type ExportChunk,
  type ExportPlan,
  planExport,
  readChunks,
} from "../domain/checkpointTransfer/exportPlan.js";
import type { FileHashes } from "../domain/checkpointTransfer/fileHashes.js";
import { trackTransfer } from "../domain/checkpointTransfer/progress.js";
import { GatewayError, invalidArgument, permissionDenied } from "../domain/errors.js";
import type { EventBus } from "../domain/eventBus.js";
import { type CheckpointInfo, ImageStore } from "../domain/imageStore.js";
import type { Logger } from "../log.js";
import { toCheckpoint } from "./apiMessages.js";
import { BoundedWriter, MAX_IN_FLIGHT, type TransferStats } from "./boundedWriter.js";
import { beginTransferCall, type TransferCall } from "./transferCall.js";
import {
  CHUNK_HEADROOM,
  compressionFromApi,
  encodeChunk,
  fromApiHeader,
  type PreEncoded,
  toApiManifest,
} from "./transferCodec.js";
import { assertDecoded, wireBytes } from "./undecodable.js";
import type { UnixPeers } from "./unixListener.js";

/**
 * 1 MiB: large enough that grpc-js's and HTTP/2's cost per message is a few percent of moving
 * the bytes (at 64 KiB it dominates), small enough that the few chunks in flight per stream
 * stay a few MiB, and well under the 4 MiB a gRPC message may have by default.
 */
export const CHUNK_BYTES = 1024 * 1024;

export interface TransferDeps {
  store: ImageStore;
  events: EventBus;
  logger: Logger;
  gatekeeper: Gatekeeper;
  unixPeers: UnixPeers;
  stats: TransferStats;
  hashes: FileHashes;
}

/**
 * A chunk ready for the wire, compressed (into `into`, when given) when asked and when that
 * makes it smaller; `frame` is the buffer sent when it is not the chunk's own.
 */
export function outgoingChunk(
  chunk: ExportChunk,
  compression: Compression,
  into?: Buffer,
): { message: PreEncoded; frame: Buffer | undefined } {
  const frame = compression === "zstd" ? compressChunk(chunk.data, CHUNK_HEADROOM, into) : undefined;
  const message = frame
    ? encodeChunk({
        fileIndex: chunk.fileIndex,
        offset: chunk.offset,
        data: frame,
        rawBytes: chunk.data.length,
      })
    : encodeChunk(chunk);
  return { message, frame };
}

/**
 * Admits an export (ExportCheckpoint, PushCheckpoint) and opens its checkpoint, after checking
 * that the caller may read every checkpoint that will be sent (with include_parents, the chain).
 */
export async function admitExport(
  rpc: TransferCall,
  deps: TransferDeps,
  req: { checkpointId: string; includeParents: boolean; compression: TransferCompression },
  /** Checks of the call's own, made once the caller is admitted and before any file is read. */
  admitted: () => void = () => {},
): Promise<{ plan: ExportPlan; compression: Compression }> {
  assertDecoded(req);
  const admission = await rpc.admit({
    checkpoints: req.checkpointId ? [{ id: req.checkpointId, access: "read" }] : [],
    // Transfers run no worker but move gigabytes: they count against the same limits.
    operation: true,
    requestBytes: wireBytes(req),
  });
  admitted();
  const compression = compressionFromApi(req.compression);
  ImageStore.validateId(req.checkpointId);
  if (req.includeParents) {
    for (const ancestor of (await deps.store.lineage(req.checkpointId)).slice(1)) {
      if (!admission.canRead(ancestor.id)) {
        throw permissionDenied(
          `grant "${admission.grant.name}" does not allow reading checkpoint ${ancestor.id}, an ancestor include_parents would send`,
        );
      }
    }
  }
  const plan = await planExport(deps.store, req.checkpointId, req.includeParents, deps.hashes, rpc.signal);
  return { plan, compression };
}

/**
 * Writes the plan's chunks, each when the writer has room; `onProgress` after each. The buffers
 * read into (and compressed into) are reused once the stream has taken their bytes: as many as
 * the writer has in flight, the chunk read ahead and the one in hand.
 */
export async function sendChunks(
  plan: ExportPlan,
  compression: Compression,
  writer: BoundedWriter,
  signal: AbortSignal,
  onProgress: (bytesDone: number) => Promise<void> | undefined,
): Promise<void> {
  const buffers = new ChunkBuffers(CHUNK_HEADROOM + frameBound(CHUNK_BYTES), MAX_IN_FLIGHT + 3);
  let done = 0;
  for await (const chunk of readChunks(plan, CHUNK_BYTES, CHUNK_HEADROOM, signal, buffers)) {
    const into = compression === "zstd" ? buffers.take() : undefined;
    const { message, frame } = outgoingChunk(chunk, compression, into);
    // What goes out is either the frame, in `into` (the chunk's buffer is free at once), or the
    // chunk itself; that buffer is free once the stream took it.
    const sending = frame ? into : undefined;
    if (frame) chunk.release();
    else if (into) buffers.give(into);
    await writer.write(message, sending ? () => buffers.give(sending) : chunk.release);
    done += chunk.data.length;
    await onProgress(done);
  }
}

export function createExportHandler(
  deps: TransferDeps,
): handleServerStreamingCall<ExportCheckpointRequest, ExportCheckpointResponse> {
  return (call) => {
    void serveExport(call, deps);
  };
}

async function serveExport(
  call: ServerWritableStream<ExportCheckpointRequest, ExportCheckpointResponse>,
  deps: TransferDeps,
): Promise<void> {
  const rpc = beginTransferCall("ExportCheckpoint", call, deps);
  const req = call.request;
  let plan: ExportPlan | undefined;
  let tracker: ReturnType<typeof trackTransfer> | undefined;
  const writer = new BoundedWriter(call, deps.stats);
  const onGone = () => writer.fail(new GatewayError("CANCELLED", "the call was cancelled by the client"));
  rpc.signal.addEventListener("abort", onGone);
  try {
    const opened = await admitExport(rpc, deps, req);
    plan = opened.plan;
    const total = opened.plan.totalBytes;
    tracker = trackTransfer(deps.events, "export", describeIdentity(rpc.identity), req.checkpointId);
    const progress = tracker;
    await writer.write({ manifest: toApiManifest(opened.plan, opened.compression, CHUNK_BYTES) });
    await sendChunks(opened.plan, opened.compression, writer, rpc.signal, (done) => {
      progress.progress(done, total);
      return undefined;
    });
    await writer.drain();
    tracker.finish();
    rpc.end();
    call.end();
  } catch (err) {
    tracker?.finish(rpc.signal.aborted ? rpc.signal.reason : err);
    const failure = rpc.end(err);
    if (failure && !call.cancelled) call.emit("error", failure);
  } finally {
    rpc.signal.removeEventListener("abort", onGone);
    await plan?.close();
  }
}

export function createImportHandler(
  deps: TransferDeps,
): handleClientStreamingCall<ImportCheckpointRequest, ImportCheckpointResponse> {
  return (call, callback) => {
    void serveImport(call, callback, deps);
  };
}

/**
 * grpc-js's request stream reads ahead up to 16 messages (a Readable's object-mode default),
 * 16 MiB of chunks; one is enough, since the handler asks for the next as soon as it has
 * written one. Readable has no public setter, so the field behind readableHighWaterMark is set.
 */
function limitReadAhead(call: ServerReadableStream<unknown, unknown>): void {
  const state = (call as unknown as { _readableState?: { highWaterMark?: number } })._readableState;
  if (state && typeof state.highWaterMark === "number") state.highWaterMark = 1;
}

async function serveImport(
  call: ServerReadableStream<ImportCheckpointRequest, ImportCheckpointResponse>,
  callback: sendUnaryData<ImportCheckpointResponse>,
  deps: TransferDeps,
): Promise<void> {
  limitReadAhead(call);
  const rpc = beginTransferCall("ImportCheckpoint", call, deps);
  // A client that goes away ends the loop below with CANCELLED rather than leaving it waiting.
  const onGone = () => call.destroy(rpc.signal.reason as Error);
  rpc.signal.addEventListener("abort", onGone);
  let incoming: CheckpointImport | undefined;
  let tracker: ReturnType<typeof trackTransfer> | undefined;
  try {
    const messages = call[Symbol.asyncIterator]() as AsyncIterator<ImportCheckpointRequest>;
    const first = await messages.next();
    if (first.done)
      throw invalidArgument("the stream ended before its header: send the header, then the chunks");
    assertDecoded(first.value);
    const header = first.value.header;
    if (!header) throw invalidArgument("the first message must be the header (checkpoint id and manifest)");
    const manifest = fromApiHeader(header);
    const ids = manifest.checkpoints.map((c) => c.id);
    const parent = manifest.checkpoints[0]?.meta.parentId;
    const admission = await rpc.admit({
      checkpoints: [
        ...ids.map((id) => ({ id, access: "write" as const })),
        ...(parent === undefined ? [] : [{ id: parent, access: "read" as const }]),
      ],
      operation: true,
      requestBytes: wireBytes(first.value),
    });
    const target = ids.at(-1) ?? "";
    tracker = trackTransfer(deps.events, "import", describeIdentity(rpc.identity), target);
    incoming = await CheckpointImport.begin(deps.store, manifest, deps.stats);
    for (;;) {
      const next = await messages.next();
      if (next.done) break;
      deps.stats.add(1);
      try {
        assertDecoded(next.value);
        admission.checkSize(wireBytes(next.value));
        const chunk = next.value.chunk;
        if (!chunk) throw invalidArgument("only the first message may be a header; the others are chunks");
        await incoming.write(chunk);
      } finally {
        deps.stats.add(-1);
      }
      tracker.progress(incoming.bytesDone, manifest.totalBytes);
    }
    rpc.signal.throwIfAborted();
    const published = await incoming.finish();
    tracker.finish();
    rpc.end();
    callback(null, importResponse(published, incoming));
  } catch (err) {
    await incoming?.abort();
    tracker?.finish(rpc.signal.aborted ? rpc.signal.reason : err);
    const failure = rpc.end(err);
    if (failure) callback(failure, null);
  } finally {
    rpc.signal.removeEventListener("abort", onGone);
  }
}

function importResponse(published: CheckpointInfo[], incoming: CheckpointImport): ImportCheckpointResponse {
  const last = published.at(-1);
  return {
    checkpoint: last ? toCheckpoint(last) : undefined,
    parents: published.slice(0, -1).map(toCheckpoint),
    bytes: incoming.bytesDone,
    wireBytes: incoming.wireBytes,
  };
}
