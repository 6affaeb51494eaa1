// CRIU's image format (magic numbers, then u32-length-prefixed protobuf entries) and its stats
// entries, the lazy pages of a pagemap; and the decoding of a raw wait status.
import protobuf from "protobufjs";
import { describe, expect, it, test } from "vitest";
import { statsEntry } from "../../gen/criu/images/stats.js";
import {
  CPUINFO_MAGIC,
  decodeStatsImage,
  encodeImage,
  IMG_COMMON_MAGIC,
  IMG_SERVICE_MAGIC,
  ImageFormatError,
  INVENTORY_MAGIC,
  imageEntries,
  inventoryRecordsDumpTime,
  lazyPageCount,
  PAGEMAP_MAGIC,
  STATS_MAGIC,
} from "../../src/criu/images.js";
import { decodeWaitStatus } from "../../src/domain/waitStatus.js";

const dumpEntry = {
  freezingTime: 1200,
  frozenTime: 45000,
  memdumpTime: 3000,
  memwriteTime: 2500,
  pagesScanned: 5000,
  pagesSkippedParent: 10,
  pagesWritten: 1234,
  irmapResolve: 0,
  pagesLazy: 0,
  pagePipes: 1,
  pagePipeBufs: 4,
  shpagesScanned: 0,
  shpagesSkippedParent: 0,
  shpagesWritten: 0,
};

describe("CRIU image files", () => {
  test("the magic numbers are CRIU's (criu/include/magic.h)", () => {
    expect(IMG_COMMON_MAGIC).toBe(0x54564319);
    expect(IMG_SERVICE_MAGIC).toBe(0x55105940);
    expect(STATS_MAGIC).toBe(0x57093306);
    expect(CPUINFO_MAGIC).toBe(0x61404013);
  });

  test("a stats-dump image decodes to its dump entry; the bytes are laid out as CRIU writes them", () => {
    const body = statsEntry.encode({ dump: dumpEntry, restore: undefined }).finish();
    const image = encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [body]);
    // Little-endian service magic, stats magic, entry length, entry.
    const bytes = Buffer.from(image);
    expect(bytes.subarray(0, 8).toString("hex")).toBe("4059105506330957");
    expect(bytes.readUInt32LE(8)).toBe(body.length);
    expect(bytes.subarray(12)).toEqual(Buffer.from(body));
    expect(decodeStatsImage(image)).toEqual({ dump: dumpEntry, restore: undefined });
  });

  test("a stats-restore image decodes to its restore entry", () => {
    const restore = {
      pagesCompared: 0,
      pagesSkippedCow: 0,
      forkingTime: 0,
      restoreTime: 90000,
      pagesRestored: 77,
    };
    const image = encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [
      statsEntry.encode({ dump: undefined, restore }).finish(),
    ]);
    expect(decodeStatsImage(image)).toEqual({ dump: undefined, restore });
  });

  test("refuses wrong magic numbers, truncation and a wrong number of entries", () => {
    const body = statsEntry.encode({ dump: dumpEntry, restore: undefined }).finish();
    const good = encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [body]);
    for (const [what, bytes] of [
      ["common instead of service magic", encodeImage(IMG_COMMON_MAGIC, STATS_MAGIC, [body])],
      ["another image's magic", encodeImage(IMG_SERVICE_MAGIC, CPUINFO_MAGIC, [body])],
      ["shorter than the magic", good.subarray(0, 6)],
      ["cut inside the length", good.subarray(0, 10)],
      ["cut inside the entry", good.subarray(0, good.length - 1)],
      ["no entry", encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [])],
      ["two entries", encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [body, body])],
      ["garbage entry", encodeImage(IMG_SERVICE_MAGIC, STATS_MAGIC, [Uint8Array.of(0xff, 0xff, 0xff)])],
    ] as const) {
      expect(() => decodeStatsImage(bytes), what).toThrow(ImageFormatError);
    }
  });

  test("imageEntries splits several entries", () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Uint8Array.of();
    const c = Uint8Array.of(9);
    const entries = imageEntries(
      encodeImage(IMG_COMMON_MAGIC, CPUINFO_MAGIC, [a, b, c]),
      IMG_COMMON_MAGIC,
      CPUINFO_MAGIC,
    );
    expect(entries.map((e) => [...e])).toEqual([[1, 2, 3], [], [9]]);
  });
});

describe("decodeWaitStatus", () => {
  test("an exit, with its code", () => {
    expect(decodeWaitStatus(0)).toEqual({ rawStatus: 0, exitCode: 0 });
    expect(decodeWaitStatus(3 << 8)).toEqual({ rawStatus: 0x300, exitCode: 3 });
    expect(decodeWaitStatus(255 << 8)).toEqual({ rawStatus: 0xff00, exitCode: 255 });
  });

  test("a death by signal, with or without a core dump", () => {
    expect(decodeWaitStatus(9)).toEqual({ rawStatus: 9, signal: 9 });
    // SIGSEGV with the core-dump bit (0x80).
    expect(decodeWaitStatus(0x8b)).toEqual({ rawStatus: 0x8b, signal: 11 });
  });

  test("stopped or continued: neither an exit nor a death", () => {
    expect(decodeWaitStatus((19 << 8) | 0x7f)).toEqual({ rawStatus: 0x137f });
    expect(decodeWaitStatus(0xffff)).toEqual({ rawStatus: 0xffff });
  });
});

describe("the inventory's dump time", () => {
  const inventory = (entry: number[]) => {
    const out = Buffer.alloc(8 + entry.length);
    out.writeUInt32LE(INVENTORY_MAGIC, 0);
    out.writeUInt32LE(entry.length, 4);
    Buffer.from(entry).copy(out, 8);
    return out;
  };

  test("dump_uptime (field 8) present or absent", () => {
    // img_version = 2, fdinfo_per_id = true, root_cg_set = 1
    const without = [0x08, 0x02, 0x10, 0x01, 0x28, 0x01];
    expect(inventoryRecordsDumpTime(inventory(without))).toBe(false);
    // … and dump_uptime = 300 (varint 0xac 0x02)
    expect(inventoryRecordsDumpTime(inventory([...without, 0x40, 0xac, 0x02]))).toBe(true);
  });

  test("other images, short or cut images are refused", () => {
    const wrong = inventory([0x08, 0x02]);
    wrong.writeUInt32LE(CPUINFO_MAGIC, 0);
    expect(() => inventoryRecordsDumpTime(wrong)).toThrow(ImageFormatError);
    expect(() => inventoryRecordsDumpTime(Buffer.alloc(4))).toThrow(ImageFormatError);
    const cut = inventory([0x08, 0x02]);
    cut.writeUInt32LE(50, 4);
    expect(() => inventoryRecordsDumpTime(cut)).toThrow(/truncated/);
    expect(() => inventoryRecordsDumpTime(inventory([0x08]))).toThrow(/does not decode/);
  });
});

describe("lazyPageCount", () => {
  const entry = (fields: { compat?: number; flags?: number; nrPages?: number }) => {
    const w = protobuf.Writer.create();
    w.uint32((1 << 3) | 0).uint64(0x7f0000000000);
    w.uint32((2 << 3) | 0).uint32(fields.compat ?? 0);
    if (fields.flags !== undefined) w.uint32((4 << 3) | 0).uint32(fields.flags);
    if (fields.nrPages !== undefined) w.uint32((5 << 3) | 0).uint64(fields.nrPages);
    return w.finish();
  };
  const head = protobuf.Writer.create()
    .uint32((1 << 3) | 0)
    .uint32(1)
    .finish();

  it("counts the pages marked lazy and not present, preferring nr_pages to compat_nr_pages", () => {
    const image = encodeImage(IMG_COMMON_MAGIC, PAGEMAP_MAGIC, [
      head,
      entry({ compat: 10, flags: 2 }), // lazy
      entry({ compat: 0, nrPages: 5, flags: 2 | 4 }), // lazy but present in pages.img
      entry({ compat: 3, flags: 4 }), // present
      entry({ compat: 2, nrPages: 7, flags: 2 }), // lazy, the wide count wins
    ]);
    expect(lazyPageCount(image)).toBe(17);
  });

  it("refuses an image that is not a pagemap", () => {
    expect(() => lazyPageCount(encodeImage(IMG_COMMON_MAGIC, STATS_MAGIC, [head]))).toThrow(ImageFormatError);
  });
});
