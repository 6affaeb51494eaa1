// The CRIU binary's identity (src/criu/criuBinary.ts): what the kept VERSION answer is keyed on.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { criuBinaryIdentity } from "../../src/criu/criuBinary.js";

let dir: string;
let savedPath: string | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "criu-binary-"));
  savedPath = process.env.PATH;
});

afterEach(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

describe("criuBinaryIdentity", () => {
  test("stays the same while the file does, and changes when it is replaced", () => {
    const bin = join(dir, "criu");
    writeFileSync(bin, "one", { mode: 0o755 });
    const first = criuBinaryIdentity(bin);
    expect(first).toBeDefined();
    expect(criuBinaryIdentity(bin)).toBe(first);
    writeFileSync(join(dir, "criu.new"), "one", { mode: 0o755 });
    renameSync(join(dir, "criu.new"), bin);
    expect(criuBinaryIdentity(bin)).not.toBe(first);
  });

  test("looks a bare name up in PATH, as spawn does, and is undefined where there is none", () => {
    const bin = join(dir, "criu-test-binary");
    writeFileSync(bin, "x", { mode: 0o755 });
    process.env.PATH = [join(dir, "missing"), dir].join(":");
    expect(criuBinaryIdentity("criu-test-binary")).toBe(criuBinaryIdentity(bin));
    expect(criuBinaryIdentity("no-such-binary")).toBeUndefined();
    expect(criuBinaryIdentity(join(dir, "no-such-binary"))).toBeUndefined();
  });
});
