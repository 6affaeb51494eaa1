// The transfer's wire forms: chunks encoded in place decode as the generated code decodes them,
// as export responses and as import requests alike; export files split at any byte boundary.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  AcceptMigrationRequest,
  ExportCheckpointResponse,
  ImportCheckpointRequest,
} from "../../gen/criu/gateway/v1/gateway.js";
import { ConfigError, resolveConfig } from "../../src/config.js";
import { readImageChunks } from "../../src/domain/migration/imageChunks.js";
import {
  CHUNK_HEADROOM,
  decodeChunkRequest,
  decodeMigrationChunkRequest,
  delimited,
  encodeChunk,
  preEncodedBytes,
  readDelimited,
  serializeMigrationRequest,
} from "../../src/grpc/transferCodec.js";

function withHeadroom(data: Buffer): Buffer {
  const buffer = Buffer.alloc(CHUNK_HEADROOM + data.length);
  data.copy(buffer, CHUNK_HEADROOM);
  return buffer.subarray(CHUNK_HEADROOM);
}

describe("chunks encoded in place", () => {
  it.each([
    { fileIndex: 0, offset: 0, size: 1 },
    { fileIndex: 3, offset: 5 * 1024 * 1024, size: 1024 * 1024 },
    { fileIndex: 70_000, offset: 2 ** 40 + 7, size: 300 },
  ])(
    "decode to the same chunk with the generated code and the copy-free reader ($size bytes at $offset)",
    (c) => {
      const data = withHeadroom(Buffer.from(Array.from({ length: c.size }, (_, i) => i % 251)));
      for (const rawBytes of [undefined, c.size * 3]) {
        const bytes = preEncodedBytes(
          encodeChunk({ fileIndex: c.fileIndex, offset: c.offset, data, rawBytes }),
        );
        const expected = {
          fileIndex: c.fileIndex,
          offset: c.offset,
          zstd: rawBytes !== undefined,
          rawBytes: rawBytes ?? 0,
        };
        const asResponse = ExportCheckpointResponse.decode(bytes).chunk;
        const asRequest = ImportCheckpointRequest.decode(bytes).chunk;
        const fast = decodeChunkRequest(bytes)?.chunk;
        for (const chunk of [asResponse, asRequest, fast]) {
          expect(chunk).toMatchObject(expected);
          expect(Buffer.from(chunk?.data ?? []).equals(data)).toBe(true);
        }
        // The copy-free reader's data is a view of the received bytes.
        expect(fast?.data.buffer).toBe(bytes.buffer);
      }
    },
  );

  it("leaves messages that are not a lone chunk to the generated decoder", () => {
    const header = Buffer.from(
      ImportCheckpointRequest.encode({ header: { checkpointId: "x", manifest: undefined } }).finish(),
    );
    expect(decodeChunkRequest(header)).toBeUndefined();
    const truncated = preEncodedBytes(
      encodeChunk({ fileIndex: 1, offset: 0, data: withHeadroom(Buffer.alloc(10)) }),
    );
    expect(() => decodeChunkRequest(truncated.subarray(0, truncated.length - 3))).not.toThrow();
    expect(decodeChunkRequest(truncated.subarray(0, truncated.length - 3))).toBeUndefined();
  });
});

describe("migration chunks", () => {
  const name = `pages-${"x".repeat(118)}.img`;

  it("encode as the generated code does, in place for chunks read from disk, and decode as views", async () => {
    const dir = mkdtempSync(join(tmpdir(), "criu-gw-codec-"));
    try {
      const content = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 253));
      writeFileSync(join(dir, name), content);
      writeFileSync(join(dir, "empty.img"), "");
      const fromDisk = [];
      for await (const chunk of readImageChunks(dir)) fromDisk.push(chunk);
      const elsewhere = { name: "core-1.img", offset: 2 ** 40 + 7, data: Buffer.from("abc") };
      for (const chunk of [...fromDisk, elsewhere]) {
        const request = { chunk: { ...chunk, data: Buffer.from(chunk.data) } };
        const bytes = serializeMigrationRequest({ chunk: { ...chunk, data: chunk.data as Buffer } });
        const generated = Buffer.from(AcceptMigrationRequest.encode(request).finish());
        expect(AcceptMigrationRequest.decode(bytes)).toEqual(AcceptMigrationRequest.decode(generated));
        const fast = decodeMigrationChunkRequest(bytes);
        expect(fast).toEqual(AcceptMigrationRequest.decode(generated));
        expect(fast?.chunk?.data.buffer).toBe(bytes.buffer);
      }
      // A chunk read from disk carries its header in the room before its data: no copy.
      const big = fromDisk.find((c) => c.data.length === content.length);
      expect(
        serializeMigrationRequest({ chunk: { ...big, data: big?.data as Buffer } } as never).buffer,
      ).toBe(big?.data.buffer);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("leaves the other messages to the generated code both ways", () => {
    for (const request of [
      { header: { checkpointId: "x", mode: 1, restoreOptions: undefined, rootPid: 5, criuVersion: "4.2.1" } },
      { imagesEnd: {} },
      { commit: {} },
    ]) {
      const bytes = serializeMigrationRequest(AcceptMigrationRequest.fromPartial(request));
      expect(AcceptMigrationRequest.decode(bytes)).toEqual(AcceptMigrationRequest.fromPartial(request));
      expect(decodeMigrationChunkRequest(bytes)).toBeUndefined();
    }
  });
});

describe("export files", () => {
  it("are read back message by message however the bytes are split", async () => {
    const messages = [Buffer.alloc(0), Buffer.from("a"), Buffer.alloc(200, 7), Buffer.alloc(70_000, 9)];
    const file = Buffer.concat(messages.flatMap((m) => delimited(m)));
    for (const pieceBytes of [1, 3, 64, 65_536, file.length]) {
      async function* pieces() {
        for (let i = 0; i < file.length; i += pieceBytes) yield file.subarray(i, i + pieceBytes);
      }
      const read: Buffer[] = [];
      for await (const m of readDelimited(pieces(), 1 << 20)) read.push(Buffer.from(m));
      expect(read).toEqual(messages);
    }
  });

  it("refuse a file cut inside a message and a message larger than allowed", async () => {
    const file = Buffer.concat(delimited(Buffer.alloc(100, 1)));
    async function* once(b: Buffer) {
      yield b;
    }
    const all = async (b: Buffer, max: number) => {
      for await (const _ of readDelimited(once(b), max));
    };
    await expect(all(file.subarray(0, 50), 1000)).rejects.toThrow("cut short");
    await expect(all(file, 99)).rejects.toThrow("a message of 100 bytes");
  });
});

describe("push settings", () => {
  it("refuse a TCP target without TLS, and a certificate without its key", () => {
    const base = { imagesRoot: "/tmp/x" };
    expect(() => resolveConfig({ ...base, pushTargets: ["gw-b.example:7443"] })).toThrow(ConfigError);
    expect(() => resolveConfig({ ...base, pushTargets: ["nowhere"] })).toThrow(/push-target/);
    expect(() =>
      resolveConfig({
        ...base,
        pushTargets: ["gw-b.example:7443"],
        pushTls: { caFile: "/ca.pem", certFile: "/a.pem", keyFile: undefined, serverName: undefined },
      }),
    ).toThrow(/go together/);
    expect(
      resolveConfig({
        ...base,
        pushTargets: ["unix:/run/b.sock", "gw-b.example:7443"],
        pushTls: { caFile: "/ca.pem", certFile: undefined, keyFile: undefined, serverName: undefined },
      }).pushTargets,
    ).toEqual(["unix:/run/b.sock", "gw-b.example:7443"]);
  });
});

describe("POST_COPY's page data", () => {
  it("encodes as the generated code does, decodes as a view, and an empty piece (a close) too", () => {
    for (const data of [Buffer.from("pages of memory"), Buffer.alloc(0), Buffer.alloc(300_000, 9)]) {
      const bytes = serializeMigrationRequest({ pages: { data } });
      const generated = Buffer.from(AcceptMigrationRequest.encode({ pages: { data } }).finish());
      expect(bytes.equals(generated)).toBe(true);
      const fast = decodeMigrationChunkRequest(bytes);
      expect(fast).toEqual(AcceptMigrationRequest.decode(generated));
      if (data.length > 0) expect(fast?.pages?.data.buffer).toBe(bytes.buffer);
    }
  });
});
