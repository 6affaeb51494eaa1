// One mapping for a full image store (src/domain/diskFull.ts): the gateway's ENOSPC or EDQUOT
// anywhere, and CRIU's, become RESOURCE_EXHAUSTED with where and how much is free; nothing else
// changes.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { asDiskFull } from "../../src/domain/diskFull.js";
import { GatewayError } from "../../src/domain/errors.js";

const root = tmpdir();

function errnoError(code: string, path?: string): Error {
  return Object.assign(new Error(`${code}: failed`), { code, ...(path === undefined ? {} : { path }) });
}

describe("a full image store", () => {
  test.each(["ENOSPC", "EDQUOT"])(
    "%s from the gateway's own writes names the file and the free space",
    async (code) => {
      const file = join(root, "x", "meta.json");
      const err = await asDiskFull(errnoError(code, file), root);
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe("RESOURCE_EXHAUSTED");
      expect((err as GatewayError).message).toMatch(
        new RegExp(`could not write ${file}: .* \\(\\d+ bytes free\\)`),
      );
    },
  );

  test("without a path, the store's root is named", async () => {
    const err = (await asDiskFull(errnoError("ENOSPC"), root)) as GatewayError;
    expect(err.message).toContain(`could not write ${root}:`);
  });

  test("CRIU's failure for lack of space, by its errno or its log, is RESOURCE_EXHAUSTED too", async () => {
    const detail = { requestType: "DUMP", crErrno: 0, crErrmsg: "", logTail: [] as string[], workerExit: "" };
    const byLog = new GatewayError("FAILED_PRECONDITION", "CRIU could not dump", {
      ...detail,
      logTail: ["(00.1) Error (criu/page-xfer.c:1): Can't write: No space left on device"],
    });
    const byErrno = new GatewayError("FAILED_PRECONDITION", "CRIU could not dump", {
      ...detail,
      crErrno: 122,
    });
    for (const failure of [byLog, byErrno]) {
      const err = (await asDiskFull(failure, root)) as GatewayError;
      expect(err.code).toBe("RESOURCE_EXHAUSTED");
      expect(err.message).toMatch(/\(\d+ bytes free\)/);
      expect(err.criu).toBe(failure.criu);
    }
  });

  test("anything else passes through unchanged", async () => {
    const other = [
      errnoError("EACCES", "/x"),
      new GatewayError("NOT_FOUND", "no"),
      new Error("boom"),
      "text",
    ];
    for (const err of other) expect(await asDiskFull(err, root)).toBe(err);
  });
});
