// The host doctor on this real host: Check's findings and `criu-gateway doctor` agree with each
// other and with what the host shows, an operation that would hit a missing piece is refused
// before CRIU starts, naming the finding, and an old CRIU on a new kernel is reported at start-up.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CheckResponse,
  CriuOptions,
  type FeatureCheckResponse,
  HostFindingState,
  type StartPageServerResponse,
  type VersionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { startGateway } from "../../src/app/startGateway.js";
import { resolveConfig } from "../../src/config.js";
import { FINDING_NAMES, type HostFinding, kernelAtLeast } from "../../src/domain/hostFindings.js";
import { errorDetailOf } from "../../src/grpc/errorStatus.js";
import { createLogger } from "../../src/log.js";
import { packageRoot } from "../../src/packageRoot.js";
import { fakeCriu, removeFakeCriuDirs } from "../support/fakeCriu.js";
import { call, criuBin, dumpWith, failure, startTestGateway, type TestGateway } from "../support/gateway.js";
import { holdPipeMaxSize } from "../support/pipeMaxSize.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { waitFor } from "../support/workload.js";

const STATE_NAMES: Record<number, HostFinding["state"]> = {
  [HostFindingState.HOST_FINDING_STATE_OK]: "ok",
  [HostFindingState.HOST_FINDING_STATE_DEGRADED]: "degraded",
  [HostFindingState.HOST_FINDING_STATE_MISSING]: "missing",
};
const PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size";

let gw: TestGateway;
const processes = new TestProcesses();

beforeAll(async () => {
  gw = await startTestGateway();
});

afterAll(async () => {
  await gw.close();
  removeFakeCriuDirs();
});

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(gw);
});

async function check(): Promise<CheckResponse> {
  return call<CheckResponse>((cb) => gw.client.check({ options: undefined }, cb));
}

function doctorCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "node",
      [join(packageRoot, "bin", "criu-gateway.js"), "doctor", ...args],
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function byName<T extends { name: string }>(findings: T[]): Record<string, T> {
  return Object.fromEntries(findings.map((f) => [f.name, f]));
}

describe("Check and `criu-gateway doctor`", () => {
  it("Check carries every finding, each ok, degraded or missing, agreeing with the host", async () => {
    const { findings } = await check();
    expect(findings.map((f) => f.name)).toEqual([...FINDING_NAMES]);
    for (const f of findings) {
      expect(STATE_NAMES[f.state], f.name).toBeDefined();
      expect(f.detail, f.name).not.toBe("");
      // What is not ok says what it blocks and how to fix it; what is ok, neither.
      if (f.state === HostFindingState.HOST_FINDING_STATE_OK) {
        expect([f.blocks, f.fix], f.name).toEqual(["", ""]);
      } else {
        expect(f.blocks, f.name).not.toBe("");
        expect(f.fix, f.name).not.toBe("");
      }
    }
    const f = byName(findings);
    const features = await call<FeatureCheckResponse>((cb) => gw.client.featureCheck({}, cb));
    expect(f["mem-track"]?.state === HostFindingState.HOST_FINDING_STATE_OK).toBe(features.memTrack);
    expect(f["pipe-max-size"]?.detail).toContain(
      `pipe-max-size is ${readFileSync(PIPE_MAX_SIZE, "utf8").trim()}`,
    );
    const v = await call<VersionResponse>((cb) => gw.client.version({}, cb));
    expect(f.criu?.detail).toContain(`CRIU ${v.majorNumber}.${v.minorNumber}.${v.sublevel ?? 0}`);
    expect(f.criu?.detail).not.toContain(criuBin()); // no host paths to remote callers
    expect(f.criu?.state).not.toBe(HostFindingState.HOST_FINDING_STATE_MISSING);
  });

  it("`criu-gateway doctor` prints the same findings, and exits 0 where CRIU runs", async () => {
    const [json, text, { findings }] = await Promise.all([doctorCli("--json"), doctorCli(), check()]);
    expect(json.code, json.stderr).toBe(0);
    const printed = JSON.parse(json.stdout) as HostFinding[];
    expect(printed.map((p) => `${p.name}=${p.state}`)).toEqual(
      findings.map((f) => `${f.name}=${STATE_NAMES[f.state]}`),
    );
    expect(text.code).toBe(0);
    for (const p of printed) {
      expect(text.stdout).toMatch(new RegExp(`^${p.name} +${p.state.toUpperCase()} `, "m"));
      if (p.fix) expect(text.stdout).toContain(`fix:    ${p.fix}`);
    }
  });

  it("`criu-gateway doctor` exits 1 when CRIU cannot run", async () => {
    const res = await doctorCli("--criu", "/nonexistent/criu", "--json");
    expect(res.code).toBe(1);
    const criu = byName(JSON.parse(res.stdout) as HostFinding[]).criu;
    expect(criu?.state).toBe("missing");
    expect(criu?.detail).toContain("/nonexistent/criu");
  });
});

describe("refusals that name a finding, before CRIU starts", () => {
  it(
    "lazy_pages, where CRIU's page server could not serve pages: FAILED_PRECONDITION naming pipe-max-size",
    async () => {
      const c = await processes.counter(gw.dir, "lazy");
      const giveBack = await holdPipeMaxSize(1048576);
      try {
        const finding = byName((await check()).findings)["pipe-max-size"];
        if (finding?.state === HostFindingState.HOST_FINDING_STATE_OK) {
          // CRIU holds CAP_SYS_RESOURCE here: no pipe limit applies to it, nothing to refuse.
          expect(finding.detail).toContain("CAP_SYS_RESOURCE, which lifts it");
          return;
        }
        const err = await failure(
          dumpWith(gw.client, "lazy", { pid: c.pid, lazyPages: true, leaveRunning: true }),
        );
        expect(err.code).toBe(status.FAILED_PRECONDITION);
        expect(err.details).toMatch(/^a dump with lazy_pages, whose page server cannot run here/);
        expect(err.details).toContain("host finding pipe-max-size is missing");
        expect(err.details).toContain("sysctl -w fs.pipe-max-size=4194304");
        expect(errorDetailOf(err)).toBeUndefined(); // CRIU was never asked
        expect(existsSync(join(gw.imagesRoot, "lazy"))).toBe(false);
        const server = await failure(
          call<StartPageServerResponse>((cb) =>
            gw.client.startPageServer(
              {
                checkpointId: "lazy-ps",
                address: "127.0.0.1",
                port: 0,
                options: CriuOptions.fromPartial({ lazyPages: true }),
              },
              cb,
            ),
          ),
        );
        expect(server.code).toBe(status.FAILED_PRECONDITION);
        expect(server.details).toContain("host finding pipe-max-size is missing");
        const now = c.read();
        await waitFor(() => c.read() > now, "the refused workload to count on");
      } finally {
        giveBack();
      }
      // Another test file may hold fs.pipe-max-size for minutes first.
    },
    16 * 60_000,
  );
});

describe("start-up", () => {
  it("a gateway on CRIU older than 4.2 says at start-up, on Linux >= 6.16, that it cannot dump inet sockets", async () => {
    const lines: string[] = [];
    const fake = fakeCriu("ok"); // answers VERSION with 4.1.1
    const dir = join(gw.dir, "old-criu");
    const old = await startGateway(
      resolveConfig({
        listen: [`unix:${join(dir, "gw.sock")}`],
        imagesRoot: join(dir, "images"),
        criuBin: fake.bin,
      }),
      createLogger("info", (line) => lines.push(line)),
      { audit: () => {} },
    );
    await old.shutdown(1_000);
    const warnings = lines
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level === "warn");
    const inet = warnings.filter((w) => w.msg.startsWith("host finding inet-sockets is missing"));
    expect(inet.length).toBe(kernelAtLeast(release(), 6, 16) ? 1 : 0);
    if (inet.length) expect(inet[0]?.msg).toContain("CRIU 4.1.1");
  });
});
