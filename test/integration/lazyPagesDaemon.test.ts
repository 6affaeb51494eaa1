// CRIU's lazy-pages daemon, started before its images exist (as a post-copy target starts it while
// the source still dumps): real CRIU, real images of a real process.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LazyPagesDaemon } from "../../src/criu/lazyPagesDaemon.js";
import { pageSocketPair } from "../../src/criu/pageSocket.js";
import { criuBin } from "../support/gateway.js";
import { type Counter, startCounter } from "../support/workload.js";

let root: string;
let images: string;
let counter: Counter;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "criu-gw-lazy-daemon-"));
  counter = await startCounter(root);
  images = join(root, "images");
  mkdirSync(images);
  execFileSync(criuBin(), [
    "dump",
    "-t",
    String(counter.pid),
    "-D",
    images,
    "--leave-running",
    "-o",
    "dump.log",
  ]);
});

afterAll(async () => {
  counter.kill();
  await counter.exited;
  rmSync(root, { recursive: true, force: true });
});

/** A daemon with an empty directory of its own and a work directory, as a post-copy target runs it. */
function startDaemon(name: string) {
  const viewDir = join(root, `${name}-view`);
  const workDir = join(root, `${name}-work`);
  mkdirSync(viewDir);
  mkdirSync(workDir);
  const pair = pageSocketPair();
  const daemon = LazyPagesDaemon.start({ criuBin: criuBin(), viewDir, workDir, pageSocket: pair.criuEnd });
  pair.closeCriuEnd();
  return { daemon, viewDir, workDir, pair };
}

describe("the lazy-pages daemon started before its images", () => {
  it("waits for them, then takes them from its own directory and listens for the restore", async () => {
    const { daemon, viewDir, workDir, pair } = startDaemon("listens");
    try {
      expect(existsSync(join(workDir, "lazy-pages.socket"))).toBe(false);
      await daemon.imagesIn(images);
      expect(existsSync(join(workDir, "lazy-pages.socket"))).toBe(true);
      // The same files linked, no copy; the images directory itself is left as it was.
      const linked = readdirSync(viewDir).filter((name) => name.startsWith("pagemap-"));
      expect(linked.length).toBeGreaterThan(0);
      expect(readdirSync(images)).not.toContain("lazy-pages.socket");
    } finally {
      daemon.kill();
      pair.socket.destroy();
    }
    expect((await daemon.exited).signal).toBe("SIGKILL");
  });

  it("fails with what happened, rather than waiting for ever, when the daemon ends before its images", async () => {
    const { daemon, pair } = startDaemon("ended");
    daemon.kill();
    await daemon.exited;
    await expect(daemon.imagesIn(images)).rejects.toThrow(/lazy-pages daemon/);
    pair.socket.destroy();
  });

  it("reports a daemon that cannot read its images", async () => {
    const broken = join(root, "broken");
    mkdirSync(broken);
    execFileSync("cp", ["-a", `${images}/.`, broken]);
    writeFileSync(join(broken, "pstree.img"), "not an image");
    const { daemon, pair } = startDaemon("broken");
    await expect(daemon.imagesIn(broken)).rejects.toThrow(/lazy-pages daemon (ended|could not)/);
    expect((await daemon.exited).code).not.toBe(0);
    pair.socket.destroy();
  });
});
