// scripts/check-breaking.sh on scratch git histories: which commit is the baseline, and that a
// removed field fails CI whether it is on a branch or is itself the newest change on main.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/packageRoot.js";

const PROTO = "proto/demo/v1/demo.proto";
const V1 =
  'syntax = "proto3";\npackage demo.v1;\nmessage Thing {\n  string name = 1;\n  int32 size = 2;\n}\n';
const WITHOUT_SIZE = 'syntax = "proto3";\npackage demo.v1;\nmessage Thing {\n  string name = 1;\n}\n';
const WITH_COLOUR = V1.replace("}\n", "  string colour = 3;\n}\n");

let repo: string;

function git(...args: string[]): string {
  return execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
}

function commit(proto: string, message: string): string {
  writeFileSync(join(repo, PROTO), proto);
  git("add", "-A");
  git("commit", "-qm", message);
  return git("rev-parse", "--short", "HEAD");
}

function check(): { code: number | null; output: string } {
  const r = spawnSync("bash", ["scripts/check-breaking.sh"], { cwd: repo, encoding: "utf8" });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "criu-gw-breaking-"));
  mkdirSync(join(repo, "scripts"));
  mkdirSync(join(repo, "proto/demo/v1"), { recursive: true });
  cpSync(join(packageRoot, "scripts/check-breaking.sh"), join(repo, "scripts/check-breaking.sh"));
  writeFileSync(join(repo, "buf.yaml"), readFileSync(join(packageRoot, "buf.yaml")));
  symlinkSync(join(packageRoot, "node_modules"), join(repo, "node_modules"));
  writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  git("init", "-q", "-b", "main");
  git("config", "user.email", "ci@example.invalid");
  git("config", "user.name", "ci");
});

afterEach(() => {
  rmSync(repo, { recursive: true, force: true });
});

describe("the API compatibility check", () => {
  it("passes when there is no earlier version of the API to compare with", () => {
    commit(V1, "first API");
    const r = check();
    expect(r.output).toMatch(/nothing to be compatible with yet/);
    expect(r.code).toBe(0);
  });

  it("compares a change on main with the change before it, not with itself", () => {
    const first = commit(V1, "first API");
    commit(WITHOUT_SIZE, "drop size");
    const r = check();
    expect(r.output).toContain(`against ${first} (first API)`);
    expect(r.output).toMatch(/field "2" with name "size" on message "Thing" was deleted/);
    expect(r.code).not.toBe(0);
  });

  it("accepts an added field, and compares a branch with main's last change to proto/", () => {
    const first = commit(V1, "first API");
    git("checkout", "-qb", "feature");
    commit(WITH_COLOUR, "add colour");
    const ok = check();
    expect(ok.output).toContain(`against ${first} (first API)`);
    expect(ok.code).toBe(0);
    commit(WITHOUT_SIZE, "drop size on the branch");
    expect(check().code).not.toBe(0);
  });

  it("takes a merge into main as one change, compared with main before the merge", () => {
    const first = commit(V1, "first API");
    git("checkout", "-qb", "feature");
    commit(WITHOUT_SIZE, "drop size on the branch");
    git("checkout", "-q", "main");
    git("merge", "-q", "--no-ff", "-m", "merge feature", "feature");
    const r = check();
    expect(r.output).toContain(`against ${first} (first API)`);
    expect(r.code).not.toBe(0);
  });
});
