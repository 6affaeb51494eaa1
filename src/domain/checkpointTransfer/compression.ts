// Per-chunk zstd for checkpoint transfers. Each chunk is one frame, compressed and decompressed
// on its own into buffers sized in advance, so a hostile frame can never make the receiver
// allocate more than the chunk it declared.
import { createRequire } from "node:module";
import { invalidArgument } from "../errors.js";

/** How chunks travel on the wire. */
export type Compression = "none" | "zstd";

/**
 * Level 1: on CRIU's memory images it keeps most of the ratio of higher levels at several times
 * their speed, and one core must keep up with the link.
 */
const ZSTD_LEVEL = 1;

interface ZstdBinding {
  compress(dst: Uint8Array, src: Uint8Array, level: number): number;
  decompress(dst: Uint8Array, src: Uint8Array): number;
  compressBound(size: number): number;
  getFrameContentSize(frame: Uint8Array): number | null;
}

// zstd-napi's raw binding: its one-shot functions write into buffers we size ourselves.
const zstd = createRequire(import.meta.url)("zstd-napi/binding") as ZstdBinding;

/** The most bytes a frame of `bytes` bytes of data can take. */
export function frameBound(bytes: number): number {
  return zstd.compressBound(bytes);
}

/**
 * Compresses `data` into `into` (or a fresh buffer) with `headroom` free bytes before the frame
 * (for a header written in place). Undefined when the frame would not be smaller than the data.
 */
export function compressChunk(data: Uint8Array, headroom: number, into?: Buffer): Buffer | undefined {
  const bound = headroom + zstd.compressBound(data.length);
  const out = into && into.length >= bound ? into : Buffer.allocUnsafeSlow(bound);
  const size = zstd.compress(out.subarray(headroom, bound), data, ZSTD_LEVEL);
  if (size >= data.length) return undefined;
  return out.subarray(headroom, headroom + size);
}

/** Decompresses one frame that must hold exactly `rawBytes` bytes; INVALID_ARGUMENT otherwise. */
export function decompressChunk(frame: Uint8Array, rawBytes: number, what: string): Buffer {
  let declared: number | null;
  try {
    declared = zstd.getFrameContentSize(frame);
  } catch {
    throw invalidArgument(`${what}: data is not a zstd frame`);
  }
  if (declared !== null && declared !== rawBytes) {
    throw invalidArgument(
      `${what}: the zstd frame holds ${declared} bytes, not the ${rawBytes} raw_bytes says`,
    );
  }
  const out = Buffer.allocUnsafe(rawBytes);
  let size: number;
  try {
    size = zstd.decompress(out, frame);
  } catch (err) {
    throw invalidArgument(
      `${what}: the zstd frame does not decompress into ${rawBytes} bytes (${(err as Error).message})`,
    );
  }
  if (size !== rawBytes) {
    throw invalidArgument(`${what}: the zstd frame holds ${size} bytes, not the ${rawBytes} raw_bytes says`);
  }
  return out;
}
