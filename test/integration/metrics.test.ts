// The gateway's metrics as an operator sees them: scraped by a real Prometheus (Debian's, started
// here on a free loopback port) and read back through Prometheus's own HTTP API.
import { existsSync } from "node:fs";
import { request } from "node:http";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { VersionResponse } from "../../gen/criu/gateway/v1/gateway.js";
import { call, dumpWith, failure, startTestGateway, type TestGateway } from "../support/gateway.js";
import { expectNothingLeft, TestProcesses } from "../support/processes.js";
import { startPrometheus, type TestPrometheus } from "../support/prometheus.js";

let gw: TestGateway;
let prometheus: TestPrometheus;
const processes = new TestProcesses();

beforeAll(async () => {
  if (!existsSync("/usr/bin/prometheus")) {
    throw new Error("prometheus is not installed: run `npm test`, whose bootstrap installs it");
  }
  gw = await startTestGateway({ metricsListen: "127.0.0.1:0" });
  const target = gw.gateway.metricsAddress;
  if (!target) throw new Error("the gateway has no metrics listener");
  prometheus = await startPrometheus(target);
});

afterAll(async () => {
  await prometheus?.stop();
  await gw?.close();
});

afterEach(async () => {
  await processes.stopAll();
  await expectNothingLeft(gw);
});

/** GET a path of the metrics listener: status and body. */
function get(path: string, method = "GET"): Promise<{ status: number; body: string }> {
  const [host, port] = (gw.gateway.metricsAddress ?? "").split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("metrics (issue: observable in production)", () => {
  it("a dump is counted, its RPC is counted by code, and Prometheus reads both", async () => {
    const c = await processes.counter(gw.dir, "metered");
    await dumpWith(gw.client, "metered", { pid: c.pid, leaveRunning: true });
    const refused = await failure(dumpWith(gw.client, "no-such-pid", { pid: 999_999_999 }));
    expect(refused.code).not.toBe(status.OK);

    const dumps = await prometheus.waitFor(
      'criu_gateway_operations_total{kind="dump",result="OK"}',
      (v) => v >= 1,
    );
    expect(dumps).toBe(1);
    const handled = await prometheus.waitFor(
      'grpc_server_handled_total{grpc_service="criu.gateway.v1.CriuService",grpc_method="Dump",grpc_type="unary",grpc_code="OK"}',
      (v) => v >= 1,
    );
    expect(handled).toBe(1);
    const failed = await prometheus.query(
      'sum(grpc_server_handled_total{grpc_method="Dump",grpc_code!="OK"})',
    );
    expect(failed).toBe(1);
    const latency = await prometheus.query('grpc_server_handling_seconds_count{grpc_method="Dump"}');
    expect(latency).toBe(2);
    const checkpoints = await prometheus.waitFor("criu_gateway_store_checkpoints", (v) => v >= 1);
    expect(checkpoints).toBe(1);
    // CRIU's own figures of the dump: how long the counter stayed frozen, in the histogram.
    const frozen = await prometheus.waitFor("criu_gateway_dump_frozen_seconds_count", (v) => v >= 1);
    expect(frozen).toBe(1);
    const frozenSum = await prometheus.query("criu_gateway_dump_frozen_seconds_sum");
    expect(frozenSum).toBeGreaterThan(0);
  });

  it("counts each call's messages, health and reflection included", async () => {
    await call<VersionResponse>((cb) => gw.client.version({}, cb));
    const text = (await get("/metrics")).body;
    expect(text).toMatch(
      /grpc_server_msg_received_total\{grpc_service="criu.gateway.v1.CriuService",grpc_method="Version",grpc_type="unary"\} [1-9]/,
    );
    expect(text).toMatch(
      /grpc_server_msg_sent_total\{grpc_service="criu.gateway.v1.CriuService",grpc_method="Version",grpc_type="unary"\} [1-9]/,
    );
  });

  it("serves /metrics only, to GET and HEAD", async () => {
    expect((await get("/metrics")).status).toBe(200);
    expect((await get("/metrics", "HEAD")).status).toBe(200);
    expect((await get("/")).status).toBe(404);
    expect((await get("/metrics", "POST")).status).toBe(405);
  });
});
