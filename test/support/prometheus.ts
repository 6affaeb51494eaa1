// A real Prometheus server (Debian's package, installed by the bootstrap) for integration tests:
// started on a free loopback port with a scrape config pointing at the gateway's metrics
// listener, queried through its HTTP API, stopped and removed afterwards.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./freePort.js";

export interface TestPrometheus {
  /** Base URL of its HTTP API. */
  url: string;
  /** The value of an instant query's first sample, or undefined while there is none. */
  query(expr: string): Promise<number | undefined>;
  /** Waits (bounded) until the query has a sample for which `accept` holds; returns it. */
  waitFor(expr: string, accept: (value: number) => boolean, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const PROMETHEUS_BIN = "/usr/bin/prometheus";

/** Starts Prometheus scraping `target` (host:port of a /metrics endpoint) every second. */
export async function startPrometheus(target: string): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), "criu-gw-prom-"));
  const port = await freePort();
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: criu-gateway",
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const prometheus: TestPrometheus = {
    url,
    query: (expr) => instantQuery(url, expr),
    async waitFor(expr, accept, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: number | undefined;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`);
        last = await instantQuery(url, expr).catch(() => undefined);
        if (last !== undefined && accept(last)) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`prometheus: ${expr} was ${last} after ${timeoutMs} ms; its log: ${stderr}`);
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return prometheus;
}

async function instantQuery(url: string, expr: string): Promise<number | undefined> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (!res.ok) throw new Error(`prometheus answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
  const sample = body.data.result[0];
  return sample ? Number(sample.value[1]) : undefined;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
