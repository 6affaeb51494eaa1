// proto/criu/images/stats.proto must say what CRIU's images/stats.proto says: the same
// comparison as for rpc.proto (scripts/check-rpc-proto.mjs), on the statistics messages.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { compareProtoText } from "../../scripts/check-rpc-proto.mjs";
import { packageRoot } from "../../src/packageRoot.js";

const oursPath = join(packageRoot, "proto", "criu", "images", "stats.proto");
const theirsPath = join(packageRoot, ".criu", "source", "images", "stats.proto");

test("proto/criu/images/stats.proto matches CRIU's images/stats.proto", () => {
  // No skipping: without CRIU's source the check proves nothing.
  if (!existsSync(theirsPath)) throw new Error(`CRIU's stats.proto is missing (${theirsPath})`);
  const ours = readFileSync(oursPath, "utf8");
  expect(compareProtoText(ours, readFileSync(theirsPath, "utf8"))).toEqual([]);
  // And the comparison does look at it: a changed number is noticed.
  const mutant = ours.replace("required uint64 pages_written = 7;", "required uint64 pages_written = 17;");
  expect(compareProtoText(mutant, readFileSync(theirsPath, "utf8"))).not.toEqual([]);
});
