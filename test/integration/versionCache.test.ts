// Version is answered from what CRIU said before, kept under the identity of the CRIU binary:
// no worker while the binary stays the same, CRIU asked again as soon as it is replaced or
// rewritten. The binary here is a wrapper that counts its starts and execs the real CRIU.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { VersionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";
import { call, criuBin, criuChildren, startTestGateway, type TestGateway } from "../support/gateway.js";

let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  expect(criuChildren()).toEqual([]);
});
afterAll(removeFakeCriuDirs);

/** A wrapper at `path` that appends a line to `starts` each time it runs, then execs `target`. */
function countingWrapper(path: string, starts: string, target: string, comment = ""): void {
  const script = `#!/bin/sh\n# ${comment}\necho started >> '${starts}'\nexec '${target}' "$@"\n`;
  writeFileSync(`${path}.new`, script, { mode: 0o755 });
  renameSync(`${path}.new`, path);
}

function startsOf(file: string): number {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l === "started").length;
  } catch {
    return 0;
  }
}

const version = (g: TestGateway) => call<VersionResponse>((cb) => g.client.version({}, cb));

async function gatewayOnWrapper(): Promise<{ g: TestGateway; bin: string; starts: string }> {
  let bin = "";
  let starts = "";
  gw = await startTestGateway((dir) => {
    bin = join(dir, "criu");
    starts = join(dir, "starts");
    countingWrapper(bin, starts, criuBin());
    return { criuBin: bin };
  });
  return { g: gw, bin, starts };
}

describe("Version", () => {
  it("is answered without a CRIU worker while the binary stays the same", async () => {
    const { g, starts } = await gatewayOnWrapper();
    // Start-up asked CRIU once.
    expect(startsOf(starts)).toBe(1);
    const answers = await Promise.all(Array.from({ length: 5 }, () => version(g)));
    expect(startsOf(starts)).toBe(1);
    expect(answers[0]?.majorNumber).toBeGreaterThanOrEqual(4);
    for (const a of answers) expect(a).toEqual(answers[0]);
  });

  it("asks CRIU again once the binary is replaced, and answers with the new binary's version", async () => {
    const { g, bin, starts } = await gatewayOnWrapper();
    const real = await version(g);
    // The fake answers VERSION with 4.1.1 "fake"; the real one is 4.2.1.
    countingWrapper(bin, starts, fakeCriu("ok").bin);
    const replaced = await version(g);
    expect(startsOf(starts)).toBe(2);
    expect(replaced.gitid).toBe("fake-criu");
    expect(replaced).not.toEqual(real);
    // And keeps the new answer.
    await version(g);
    expect(startsOf(starts)).toBe(2);
  });

  it("asks CRIU again once the binary is rewritten in place", async () => {
    const { g, bin, starts } = await gatewayOnWrapper();
    await version(g);
    // Same inode, same target: only the file's contents and times change.
    const script = readFileSync(bin, "utf8");
    writeFileSync(bin, script.replace("# \n", "# rewritten\n"));
    await version(g);
    expect(startsOf(starts)).toBe(2);
  });
});
