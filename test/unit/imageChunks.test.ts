// The images of a migration as chunks, and their reassembly: byte for byte, in order, never
// outside the directory.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CHUNK_BYTES, ImageWriter, readImageChunks } from "../../src/domain/migration/imageChunks.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "criu-gw-chunks-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("readImageChunks and ImageWriter", () => {
  it("carry every image byte for byte, empty files too, and leave the metadata and logs behind", async () => {
    const from = tempDir();
    const big = Buffer.alloc(CHUNK_BYTES * 2 + 5, 7);
    writeFileSync(join(from, "pages-1.img"), big);
    writeFileSync(join(from, "empty.img"), "");
    writeFileSync(join(from, "inventory.img"), "inv");
    writeFileSync(join(from, "meta.json"), "{}");
    writeFileSync(join(from, "dump.log"), "log");
    const to = tempDir();
    const writer = new ImageWriter(to);
    const chunks: number[] = [];
    for await (const chunk of readImageChunks(from)) {
      chunks.push(chunk.data.length);
      await writer.write(chunk);
    }
    expect(await writer.finish()).toBe(3);
    expect(readdirSync(to).sort()).toEqual(["empty.img", "inventory.img", "pages-1.img"]);
    expect(readFileSync(join(to, "pages-1.img")).equals(big)).toBe(true);
    expect(Math.max(...chunks)).toBe(CHUNK_BYTES);
  });

  it("refuses a name that leaves the directory, the gateway's metadata, and a chunk out of order", async () => {
    const writer = new ImageWriter(tempDir());
    const data = Buffer.from("x");
    await expect(writer.write({ name: "../escape.img", offset: 0, data })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(writer.write({ name: "meta.json", offset: 0, data })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await writer.write({ name: "a.img", offset: 0, data });
    await expect(writer.write({ name: "a.img", offset: 5, data })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await writer.abandon();
  });
});
