// ExportCheckpoint, ImportCheckpoint and PushCheckpoint between two real gateways.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferCompression } from "../../gen/criu/gateway/v1/gateway.js";
import { failure, startTestGateway, type TestGateway } from "../support/gateway.js";
import { asImport, exportAll, importStream, plantFiles } from "../support/transfer.js";

let a: TestGateway;
let b: TestGateway;

beforeAll(async () => {
  a = await startTestGateway();
  b = await startTestGateway();
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

/** The entries of a store, internal ones (staging) included. */
function storeEntries(gw: TestGateway): string[] {
  return readdirSync(gw.imagesRoot).sort();
}

describe("export and import", () => {
  it("copies a checkpoint's files byte for byte under a new id, marked imported", async () => {
    const files = plantFiles(a.imagesRoot, "plain", {
      "pages-1.img": 3 * 1024 * 1024 + 17,
      "core-1.img": 100,
      "empty.img": 0,
    });
    for (const compression of [
      TransferCompression.TRANSFER_COMPRESSION_NONE,
      TransferCompression.TRANSFER_COMPRESSION_ZSTD,
    ]) {
      const exported = await exportAll(a.client, { checkpointId: "plain", compression });
      const manifest = exported[0]?.manifest;
      expect(manifest?.checkpoints.map((c) => c.files.map((f) => f.name))).toEqual([
        ["core-1.img", "empty.img", "pages-1.img"],
      ]);
      const copy = `plain-copy-${compression}`;
      const res = await importStream(b.client, asImport(exported, copy));
      expect(res.checkpoint?.checkpointId).toBe(copy);
      for (const [name, bytes] of Object.entries(files)) {
        expect(readFileSync(join(b.imagesRoot, copy, name)).equals(bytes)).toBe(true);
      }
      const meta = JSON.parse(readFileSync(join(b.imagesRoot, copy, "meta.json"), "utf8"));
      expect(meta.importedImages).toBe(true);
    }
    expect(storeEntries(b).filter((n) => n.startsWith("."))).toEqual([]);
  });
});
