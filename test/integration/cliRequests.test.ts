// The criu-gateway command's pre-dump, log and cpuinfo commands against a real `serve` and real CRIU.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliGateway, startCliGateway } from "../support/cliGateway.js";
import { startCounter, waitFor } from "../support/workload.js";

let gateway: CliGateway;
let dir: string;
const cli = (...args: string[]) => gateway.cli(...args);

beforeAll(async () => {
  gateway = await startCliGateway("criu-gw-cli2-");
  dir = gateway.dir;
});

afterAll(async () => {
  await gateway.stop();
});

describe("criu-gateway pre-dump, log and cpuinfo commands", () => {
  it("records and checks the CPU, lists the checkpoint's kind, and prints its log", async () => {
    const dumped = await cli("cpuinfo-dump", "cpu", "--log-level", "4");
    expect(dumped.stderr).toBe("");
    expect(dumped.stdout).toMatch(/CPU description written as checkpoint cpu/);
    const checked = await cli("cpuinfo-check", "cpu");
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/can run what checkpoint cpu describes/);
    const ls = await cli("ls");
    expect(ls.stdout).toMatch(/^ID\s+KIND\s+CREATED\s+SIZE\s+PID\s+PARENT\s+STATE\s+FLUSHED\n/);
    expect(ls.stdout).toMatch(/\ncpu\s+cpuinfo\s.*\scomplete\s+(yes|no)\n/);
    const log = await cli("log", "cpu");
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(/cpu: /);
    const checkLog = await cli("log", "cpu", "--kind", "cpuinfo-check");
    expect(checkLog.code).toBe(0);
    const noLog = await cli("log", "cpu", "--kind", "restore");
    expect(noLog.code).toBe(1);
    expect(noLog.stderr).toMatch(/has no restore\.log/);
    const badKind = await cli("log", "cpu", "--kind", "nonsense");
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toMatch(/--kind nonsense/);
  });

  it("pre-dumps, or says why this host cannot", async () => {
    const c = await startCounter(dir, "cli-pre");
    try {
      const features = JSON.parse((await cli("features", "--json")).stdout) as { memTrack: boolean };
      const pre = await cli("pre-dump", "--pid", String(c.pid), "--id", "pre");
      if (features.memTrack) {
        expect(pre.stdout).toMatch(/pre-dump pre written/);
      } else {
        expect(pre.code).toBe(1);
        expect(pre.stderr).toMatch(/pre-dump needs dirty-memory tracking/);
      }
      const now = c.read();
      await waitFor(() => c.read() > now, "the counter to keep counting");
      const usage = await cli("pre-dump", "--id", "x");
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/pre-dump needs --pid N/);
    } finally {
      c.child.kill("SIGKILL");
      await c.exited;
    }
  });
});
