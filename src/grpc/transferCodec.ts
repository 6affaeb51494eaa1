// The wire side of checkpoint transfers: chunk messages encoded in place in front of their data
// and decoded as views of the received bytes, so a chunk's bytes are never copied by protobuf on
// either gateway; the API's manifest turned into the domain's and back; and the length-delimited
// file format of `criu-gateway export`.
import type { ServiceDefinition } from "@grpc/grpc-js";
import {
  AcceptMigrationRequest,
  type Checkpoint,
  CheckpointKind,
  ExportCheckpointResponse,
  type ImportCheckpointHeader,
  ImportCheckpointRequest,
  type MigrationChunk,
  TransferCompression,
  type TransferManifest,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { ImportManifest, IncomingChunk } from "../domain/checkpointTransfer/checkpointImport.js";
import type { Compression } from "../domain/checkpointTransfer/compression.js";
import type { ExportPlan } from "../domain/checkpointTransfer/exportPlan.js";
import { invalidArgument } from "../domain/errors.js";
import type { CheckpointKind as DomainKind } from "../domain/imageStore.js";
import { headroomOf } from "../domain/migration/imageChunks.js";
import { toCheckpoint } from "./apiMessages.js";

/** Bytes kept free in front of a chunk's data for its message header (at most 37 are used). */
export const CHUNK_HEADROOM = 48;

const PRE_ENCODED = Symbol("pre-encoded message");

/** A message whose bytes are ready: serializers made here send them as they are. */
export interface PreEncoded {
  readonly [PRE_ENCODED]: Buffer;
}

export function isPreEncoded(value: unknown): value is PreEncoded {
  return typeof value === "object" && value !== null && PRE_ENCODED in value;
}

/** The bytes of a pre-encoded message (for writing to a file). */
export function preEncodedBytes(value: PreEncoded): Buffer {
  return value[PRE_ENCODED];
}

export interface OutgoingChunk {
  fileIndex: number;
  offset: number;
  /** Must have CHUNK_HEADROOM bytes of its own buffer free before it (readChunks, compressChunk). */
  data: Buffer;
  /** Set when data is a zstd frame: the size it decompresses to. */
  rawBytes?: number;
}

/**
 * `{chunk: ...}` as an ExportCheckpointResponse, which is also a valid ImportCheckpointRequest
 * (field 2 in both): the header written into the free bytes before the data, no copy made.
 */
export function encodeChunk(chunk: OutgoingChunk): PreEncoded {
  const inner: number[] = [0x08, ...varint(chunk.fileIndex), 0x10, ...varint(chunk.offset)];
  if (chunk.rawBytes !== undefined) inner.push(0x20, 0x01, 0x28, ...varint(chunk.rawBytes));
  inner.push(0x1a, ...varint(chunk.data.length));
  const header = [0x12, ...varint(inner.length + chunk.data.length), ...inner];
  if (chunk.data.byteOffset < header.length) throw new Error("chunk data without room for its header");
  return { [PRE_ENCODED]: withHeader(header, chunk.data, chunk.data.byteOffset) };
}

/**
 * `header` then `data` as one buffer: written into the `room` free bytes before data when it
 * fits, else (data from elsewhere) copied once into a new buffer.
 */
function withHeader(header: number[], data: Uint8Array, room: number): Buffer {
  const size = header.length + data.length;
  if (room >= header.length) {
    const bytes = Buffer.from(data.buffer, data.byteOffset - header.length, size);
    bytes.set(header, 0);
    return bytes;
  }
  const bytes = Buffer.allocUnsafeSlow(size);
  bytes.set(header, 0);
  bytes.set(data, header.length);
  return bytes;
}

/**
 * AcceptMigrationRequest's serializer for the source gateway: a chunk's header written before
 * its data (readImageChunks leaves room for it), anything else by the generated encoder, whose
 * byte-by-byte copy of a mebibyte cost more than the rest of sending it.
 */
export function serializeMigrationRequest(value: AcceptMigrationRequest): Buffer {
  if (value.pages && !value.chunk && !value.header && !value.imagesEnd && !value.commit) {
    return serializePages(value.pages.data);
  }
  const chunk = value.chunk;
  if (!chunk || value.header || value.imagesEnd || value.commit || value.pages) {
    return Buffer.from(AcceptMigrationRequest.encode(value).finish());
  }
  const name = Buffer.from(chunk.name, "utf8");
  const inner = [0x0a, ...varint(name.length), ...name, 0x10, ...varint(chunk.offset), 0x1a];
  inner.push(...varint(chunk.data.length));
  const header = [0x12, ...varint(inner.length + chunk.data.length), ...inner];
  return withHeader(header, chunk.data, headroomOf(chunk.data));
}

/** POST_COPY's page data (AcceptMigrationRequest.pages = 5, MigrationPages.data = 1), one copy. */
function serializePages(data: Uint8Array): Buffer {
  // Empty data is proto3's default, written as nothing (as the generated encoder does).
  const inner = data.length === 0 ? [] : [0x0a, ...varint(data.length)];
  return withHeader([0x2a, ...varint(inner.length + data.length), ...inner], data, 0);
}

/** Page data's decoding, its data a view of `bytes`; undefined unless the message is just that. */
function decodePagesRequest(bytes: Buffer): AcceptMigrationRequest | undefined {
  const r = onlyField(bytes, 0x2a);
  if (!r) return undefined;
  let data: Buffer | undefined;
  while (!r.done()) {
    if (r.uint() !== 0x0a) return undefined;
    data = r.bytes();
  }
  return {
    header: undefined,
    chunk: undefined,
    imagesEnd: undefined,
    commit: undefined,
    pages: { data: data ?? Buffer.alloc(0) },
  };
}

/**
 * Decodes an AcceptMigrationRequest that holds only a chunk, its data a view of `bytes`;
 * undefined for anything else (the generated decoder then takes it).
 */
export function decodeMigrationChunkRequest(bytes: Buffer): AcceptMigrationRequest | undefined {
  if (bytes[0] === 0x2a) return decodePagesRequest(bytes);
  const r = onlyField(bytes, 0x12);
  if (!r) return undefined;
  const chunk: MigrationChunk = { name: "", offset: 0, data: Buffer.alloc(0) };
  while (!r.done()) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a:
        chunk.name = r.bytes().toString("utf8");
        break;
      case 0x10:
        chunk.offset = r.uint();
        break;
      case 0x1a:
        chunk.data = r.bytes();
        break;
      default:
        return undefined;
    }
  }
  return { header: undefined, chunk, imagesEnd: undefined, commit: undefined, pages: undefined };
}

/**
 * A reader over the one length-delimited field of `bytes` when it is the message's only field and
 * has the tag `tag`; undefined otherwise (the generated decoder then takes the message).
 */
function onlyField(bytes: Buffer, tag: number): Reader | undefined {
  const outer = new Reader(bytes, 0, bytes.length);
  if (outer.done() || outer.uint() !== tag) return undefined;
  const length = outer.uint();
  if (outer.pos + length !== bytes.length) return undefined;
  return new Reader(bytes, outer.pos, bytes.length);
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/**
 * Decodes an ImportCheckpointRequest that holds only a chunk, with its data a view of `bytes`;
 * undefined for anything else (the generated decoder then takes it, copies and all).
 */
export function decodeChunkRequest(bytes: Buffer): { chunk: IncomingChunk } | undefined {
  const r = onlyField(bytes, 0x12);
  if (!r) return undefined;
  const chunk: IncomingChunk = { fileIndex: 0, offset: 0, data: new Uint8Array(0), zstd: false, rawBytes: 0 };
  while (!r.done()) {
    const tag = r.uint();
    switch (tag) {
      case 0x08:
        chunk.fileIndex = r.uint();
        break;
      case 0x10:
        chunk.offset = r.uint();
        break;
      case 0x1a:
        chunk.data = r.bytes();
        break;
      case 0x20:
        chunk.zstd = r.uint() !== 0;
        break;
      case 0x28:
        chunk.rawBytes = r.uint();
        break;
      default:
        return undefined;
    }
  }
  return { chunk };
}

class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  done(): boolean {
    return this.pos >= this.end;
  }
  /** A varint up to 2^53; throws past the end or beyond. */
  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined || this.pos > this.end) throw new Error("truncated varint");
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    throw new Error("varint too long");
  }
  bytes(): Buffer {
    const length = this.uint();
    if (this.pos + length > this.end) throw new Error("truncated bytes field");
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

/**
 * The service with ExportCheckpoint's responses, and ImportCheckpoint's and AcceptMigration's
 * chunk requests, taking the copy-free paths above; a malformed chunk falls through to the generated decoder, which
 * reports it as any other undecodable request.
 */
export function withTransferCodecs<S extends ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = { ...service };
  const exportMethod = service.exportCheckpoint;
  const importMethod = service.importCheckpoint;
  const acceptMethod = service.acceptMigration;
  if (exportMethod)
    out.exportCheckpoint = {
      ...exportMethod,
      responseSerialize: transferSerializer(ExportCheckpointResponse),
    };
  if (importMethod) out.importCheckpoint = withFastDecode(importMethod, decodeChunkRequest);
  if (acceptMethod) out.acceptMigration = withFastDecode(acceptMethod, decodeMigrationChunkRequest);
  return out as S;
}

/** A serializer that sends pre-encoded messages as they are and encodes the others. */
export function transferSerializer<T>(type: { encode(message: T): { finish(): Uint8Array } }) {
  return (value: T | PreEncoded): Buffer =>
    isPreEncoded(value) ? value[PRE_ENCODED] : Buffer.from(type.encode(value as T).finish());
}

export const importRequestSerializer = transferSerializer(ImportCheckpointRequest);

// ---- manifests ----

const COMPRESSION_TO_API: Record<Compression, TransferCompression> = {
  none: TransferCompression.TRANSFER_COMPRESSION_NONE,
  zstd: TransferCompression.TRANSFER_COMPRESSION_ZSTD,
};

/** The compression a caller asked for; UNSPECIFIED is the gateway's default, zstd. */
export function compressionFromApi(value: TransferCompression): Compression {
  switch (value) {
    case TransferCompression.TRANSFER_COMPRESSION_UNSPECIFIED:
    case TransferCompression.TRANSFER_COMPRESSION_ZSTD:
      return "zstd";
    case TransferCompression.TRANSFER_COMPRESSION_NONE:
      return "none";
    default:
      throw invalidArgument(`compression ${value} is not one this gateway knows (NONE or ZSTD)`);
  }
}

export function toApiManifest(
  plan: ExportPlan,
  compression: Compression,
  chunkBytes: number,
): TransferManifest {
  return {
    formatVersion: 1,
    checkpoints: plan.checkpoints.map((c) => ({
      checkpoint: toCheckpoint(c.info),
      files: c.files.map((f) => ({ name: f.name, sizeBytes: f.sizeBytes, mode: f.mode, sha256: f.sha256 })),
    })),
    compression: COMPRESSION_TO_API[compression],
    chunkBytes,
    totalBytes: plan.totalBytes,
  };
}

const KIND_FROM_API: Partial<Record<CheckpointKind, DomainKind>> = {
  [CheckpointKind.CHECKPOINT_KIND_DUMP]: "dump",
  [CheckpointKind.CHECKPOINT_KIND_PRE_DUMP]: "pre-dump",
  [CheckpointKind.CHECKPOINT_KIND_CPUINFO]: "cpuinfo",
  [CheckpointKind.CHECKPOINT_KIND_PAGES]: "pages",
};

/**
 * The header of an ImportCheckpoint as the domain's manifest: the last checkpoint under
 * `header.checkpoint_id` when given. INVALID_ARGUMENT for what the domain cannot even represent.
 */
export function fromApiHeader(header: ImportCheckpointHeader): ImportManifest {
  const m = header.manifest;
  if (!m) throw invalidArgument("header.manifest is required");
  if (m.formatVersion !== 1) {
    throw invalidArgument(`manifest.format_version ${m.formatVersion} is not one this gateway reads (1)`);
  }
  const compression: Compression =
    m.compression === TransferCompression.TRANSFER_COMPRESSION_ZSTD
      ? "zstd"
      : m.compression === TransferCompression.TRANSFER_COMPRESSION_NONE ||
          m.compression === TransferCompression.TRANSFER_COMPRESSION_UNSPECIFIED
        ? "none"
        : (() => {
            throw invalidArgument(`manifest.compression ${m.compression} is not NONE or ZSTD`);
          })();
  const last = m.checkpoints.length - 1;
  return {
    compression,
    chunkBytes: m.chunkBytes,
    totalBytes: m.totalBytes,
    checkpoints: m.checkpoints.map((c, i) => {
      const info: Checkpoint | undefined = c.checkpoint;
      if (!info) throw invalidArgument(`manifest: checkpoint ${i} has no metadata`);
      const kind = KIND_FROM_API[info.kind];
      if (!kind)
        throw invalidArgument(
          `manifest: checkpoint ${info.checkpointId} has kind ${info.kind}, not one of DUMP, PRE_DUMP, CPUINFO, PAGES`,
        );
      return {
        id: i === last && header.checkpointId ? header.checkpointId : info.checkpointId,
        meta: {
          rootPid: info.rootPid,
          parentId: info.parentCheckpointId || undefined,
          criuVersion: info.criuVersion,
          leaveRunning: info.leaveRunning,
          kind,
          ...(info.dumpStatistics === undefined ? {} : { dumpStatistics: info.dumpStatistics }),
          ...(info.pagesSentTo ? { pagesSentTo: info.pagesSentTo } : {}),
        },
        files: c.files.map((f) => ({ name: f.name, sizeBytes: f.sizeBytes, sha256: f.sha256 })),
      };
    }),
  };
}

// ---- files: length-delimited messages ----

/** A message as it goes into an export file: its length as a varint, then its bytes. */
export function delimited(message: Uint8Array): Buffer[] {
  return [
    Buffer.from(varint(message.length)),
    Buffer.from(message.buffer, message.byteOffset, message.length),
  ];
}

/**
 * Reads length-delimited messages from a byte stream, each as one Buffer; at most one message
 * and one read's worth of bytes are held at a time. INVALID_ARGUMENT for a message larger than
 * `maxBytes` or a stream that ends inside one.
 */
export async function* readDelimited(
  source: AsyncIterable<Buffer>,
  maxBytes: number,
): AsyncGenerator<Buffer> {
  // Pieces are gathered and joined once per message: joining at every read would copy a large
  // message many times over.
  let parts: Buffer[] = [];
  let have = 0;
  let head: { length: number; start: number } | undefined;
  const take = (n: number): Buffer => {
    const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have);
    parts = all.length > n ? [all.subarray(n)] : [];
    have -= n;
    return all.subarray(0, n);
  };
  for await (const piece of source) {
    parts.push(piece);
    have += piece.length;
    for (;;) {
      if (!head) {
        if (parts.length > 1 && (parts[0] as Buffer).length < 10) parts = [Buffer.concat(parts, have)];
        head = readLength(parts[0] as Buffer);
        if (!head) break;
        if (head.length > maxBytes) {
          throw invalidArgument(
            `a message of ${head.length} bytes in the stream; the most is ${maxBytes}: not an export file?`,
          );
        }
      }
      if (have < head.start + head.length) break;
      take(head.start);
      const message = take(head.length);
      head = undefined;
      yield message;
      if (have === 0) break;
    }
  }
  if (have > 0 || head)
    throw invalidArgument("the stream ends inside a message: the export file is cut short");
}

function readLength(buf: Buffer): { length: number; start: number } | undefined {
  let length = 0;
  let scale = 1;
  for (let i = 0; i < Math.min(buf.length, 8); i++) {
    const b = buf[i] as number;
    length += (b & 0x7f) * scale;
    if (b < 0x80) return { length, start: i + 1 };
    scale *= 0x80;
  }
  if (buf.length >= 8) throw invalidArgument("a message length that is not a varint: not an export file?");
  return undefined;
}

export { ExportCheckpointResponse, ImportCheckpointRequest };

/** `method` decoding with `fast` first, and with the generated decoder what `fast` does not take. */
function withFastDecode<M extends { requestDeserialize: (bytes: Buffer) => R }, R>(
  method: M,
  fast: (bytes: Buffer) => R | undefined,
): M {
  return {
    ...method,
    requestDeserialize: (bytes: Buffer) => {
      try {
        const decoded = fast(bytes);
        if (decoded) return decoded;
      } catch {
        // Not well formed: the generated decoder says what is wrong with it.
      }
      return method.requestDeserialize(bytes);
    },
  };
}
