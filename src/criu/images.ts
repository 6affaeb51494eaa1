// Reading CRIU's image files (criu/image.c, criu/protobuf.c, criu/include/magic.h).
//
// An image starts with magic numbers, little-endian u32s: a head magic (IMG_COMMON_MAGIC for
// ordinary images, IMG_SERVICE_MAGIC for service files such as stats; the inventory image has
// none), then the image type's own magic. Entries follow, each a little-endian u32 length and
// that many bytes of protobuf. CRIU writes in host byte order; every architecture CRIU runs on
// with this gateway (x86_64, aarch64, …) is little-endian.
import protobuf from "protobufjs";
import { type dumpStatsEntry, type restoreStatsEntry, statsEntry } from "../../gen/criu/images/stats.js";

export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;
export const STATS_MAGIC = 0x57093306;
export const CPUINFO_MAGIC = 0x61404013;
export const INVENTORY_MAGIC = 0x58313116;
export const FILES_MAGIC = 0x56303138;
export const PAGEMAP_MAGIC = 0x56084025;

/** CRIU's file names, relative to the images directory (its work directory, unless told otherwise). */
export const STATS_DUMP_FILE = "stats-dump";
export const STATS_RESTORE_FILE = "stats-restore";
export const CPUINFO_FILE = "cpuinfo.img";
export const INVENTORY_FILE = "inventory.img";
/** Every file object of a dump (CRIU 3.15 and later): file_entry messages. */
export const FILES_FILE = "files.img";

export class ImageFormatError extends Error {
  override readonly name = "ImageFormatError";
}

/** The protobuf entries of an image, after checking its two magic numbers. */
export function imageEntries(bytes: Uint8Array, headMagic: number, typeMagic: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) throw new ImageFormatError("image shorter than its magic numbers");
  const head = view.getUint32(0, true);
  const type = view.getUint32(4, true);
  if (head !== headMagic) throw new ImageFormatError(`head magic ${hex(head)}, expected ${hex(headMagic)}`);
  if (type !== typeMagic) throw new ImageFormatError(`image magic ${hex(type)}, expected ${hex(typeMagic)}`);
  const entries: Uint8Array[] = [];
  let at = 8;
  while (at < bytes.byteLength) {
    if (at + 4 > bytes.byteLength) throw new ImageFormatError(`truncated entry length at byte ${at}`);
    const size = view.getUint32(at, true);
    at += 4;
    if (at + size > bytes.byteLength) throw new ImageFormatError(`truncated entry at byte ${at - 4}`);
    entries.push(bytes.subarray(at, at + size));
    at += size;
  }
  return entries;
}

/** Decodes a stats-dump or stats-restore image: one stats_entry. */
export function decodeStatsImage(bytes: Uint8Array): {
  dump: dumpStatsEntry | undefined;
  restore: restoreStatsEntry | undefined;
} {
  const entries = imageEntries(bytes, IMG_SERVICE_MAGIC, STATS_MAGIC);
  const first = entries[0];
  if (entries.length !== 1 || first === undefined) {
    throw new ImageFormatError(`a stats image holds one entry, not ${entries.length}`);
  }
  let entry: ReturnType<typeof statsEntry.decode>;
  try {
    entry = statsEntry.decode(first);
  } catch (err) {
    throw new ImageFormatError(`stats entry is not a stats_entry: ${(err as Error).message}`);
  }
  return { dump: entry.dump, restore: entry.restore };
}

/**
 * Whether an inventory image recorded the time of its dump (inventory_entry.dump_uptime, field 8).
 * CRIU does so only with track_mem (and always for a pre-dump), and it refuses to use a parent
 * images directory whose inventory lacks it: it could not tell a reused pid from the same process.
 * The inventory is the one image with no head magic: its own magic, then one entry.
 */
export function inventoryRecordsDumpTime(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) throw new ImageFormatError("inventory image shorter than its magic and length");
  const magic = view.getUint32(0, true);
  if (magic !== INVENTORY_MAGIC)
    throw new ImageFormatError(`inventory magic ${hex(magic)}, expected ${hex(INVENTORY_MAGIC)}`);
  const size = view.getUint32(4, true);
  if (8 + size > bytes.byteLength) throw new ImageFormatError("truncated inventory entry");
  const reader = protobuf.Reader.create(bytes.subarray(8, 8 + size));
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === 8) return true;
      reader.skipType(tag & 7);
    }
  } catch (err) {
    throw new ImageFormatError(`inventory entry does not decode: ${(err as Error).message}`);
  }
  return false;
}

/** pagemap_entry.flags: the pages may be restored lazily (PE_LAZY), and are in the pages image (PE_PRESENT). */
const PE_LAZY = 1 << 1;
const PE_PRESENT = 1 << 2;

/** A pagemap image's file name: one per process, "pagemap-<pid>.img". */
export const PAGEMAP_FILE = /^pagemap-\d+\.img$/;

/**
 * The pages a pagemap image leaves to be fetched lazily: those of entries marked PE_LAZY and not
 * present in the pages image. Fields, from CRIU's images/pagemap.proto: the first entry is a
 * pagemap_head; then pagemap_entry: compat_nr_pages = 2, flags = 4, nr_pages = 5 (which replaces
 * compat_nr_pages when set).
 */
export function lazyPageCount(bytes: Uint8Array): number {
  const entries = imageEntries(bytes, IMG_COMMON_MAGIC, PAGEMAP_MAGIC);
  let pages = 0;
  for (const entry of entries.slice(1)) {
    const { flags, nrPages } = pagemapEntry(entry);
    if ((flags & PE_LAZY) !== 0 && (flags & PE_PRESENT) === 0) pages += nrPages;
  }
  return pages;
}

function pagemapEntry(entry: Uint8Array): { flags: number; nrPages: number } {
  const reader = protobuf.Reader.create(entry);
  let flags = 0;
  let compat = 0;
  let wide: number | undefined;
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      if (field === 2) compat = reader.uint32();
      else if (field === 4) flags = reader.uint32();
      else if (field === 5) wide = Number(reader.uint64().toString());
      else reader.skipType(tag & 7);
    }
  } catch (err) {
    throw new ImageFormatError(`a pagemap_entry does not decode: ${(err as Error).message}`);
  }
  return { flags, nrPages: wide ?? compat };
}

/** A unix socket of a dump bound to a filesystem path (not an abstract name). */
export interface BoundUnixSocket {
  /** The name it was bound to, relative to `dir` when that is set. */
  path: string;
  /** unix_sk_entry.name_dir: the directory a relative name was bound in. */
  dir: string;
}

/**
 * The unix sockets in a files image bound to filesystem paths. Fields, from CRIU's images/fdinfo.proto
 * and images/sk-unix.proto: file_entry.usk = 16 (a unix_sk_entry); unix_sk_entry.name = 11 (bytes;
 * an abstract name starts with a NUL), name_dir = 14.
 */
export function boundUnixSockets(bytes: Uint8Array): BoundUnixSocket[] {
  const out: BoundUnixSocket[] = [];
  for (const entry of imageEntries(bytes, IMG_COMMON_MAGIC, FILES_MAGIC)) {
    const usk = fields(entry, "file_entry").get(16);
    if (usk === undefined) continue;
    const socket = fields(usk, "unix_sk_entry");
    const name = socket.get(11);
    if (name === undefined || name.length === 0 || name[0] === 0) continue;
    const dir = socket.get(14);
    // A path ends at its first NUL (CRIU keeps the kernel's terminating one).
    const end = name.indexOf(0);
    const path = utf8.decode(end < 0 ? name : name.subarray(0, end));
    out.push({ path, dir: dir === undefined ? "" : utf8.decode(dir) });
  }
  return out;
}

const utf8 = new TextDecoder();

/** The length-delimited fields of one protobuf message, by number (the last of repeated ones). */
function fields(message: Uint8Array, type: string): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const reader = protobuf.Reader.create(message);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if ((tag & 7) === 2) out.set(tag >>> 3, reader.bytes());
      else reader.skipType(tag & 7);
    }
  } catch (err) {
    throw new ImageFormatError(`a ${type} does not decode: ${(err as Error).message}`);
  }
  return out;
}

/** Builds an image the way CRIU writes one; for tests. */
export function encodeImage(headMagic: number, typeMagic: number, entries: Uint8Array[]): Uint8Array {
  const size = 8 + entries.reduce((n, e) => n + 4 + e.byteLength, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, headMagic, true);
  view.setUint32(4, typeMagic, true);
  let at = 8;
  for (const e of entries) {
    view.setUint32(at, e.byteLength, true);
    out.set(e, at + 4);
    at += 4 + e.byteLength;
  }
  return out;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}
