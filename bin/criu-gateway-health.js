#!/usr/bin/env node
// Asks a gateway's grpc.health.v1.Health whether it is SERVING, over its unix socket: for probes
// that cannot speak gRPC there themselves (Kubernetes' own gRPC probes are plaintext TCP only,
// which the gateway refuses off loopback). Exit 0 when SERVING, 1 otherwise, with the reason on
// stderr.
//   criu-gateway-health [ADDR] [SERVICE]   (default unix:/run/criu-gateway/gateway.sock, "")
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";

const TIMEOUT_MS = 5000;
const generated = new URL("../dist/gen/grpc/health/v1/health.js", import.meta.url);
if (!existsSync(fileURLToPath(generated))) {
  process.stderr.write("criu-gateway-health: the gateway is not built yet (npm run bootstrap)\n");
  process.exit(1);
}
const { HealthClient, HealthCheckResponse_ServingStatus: Serving } = await import(generated.href);
const [address = "unix:/run/criu-gateway/gateway.sock", service = ""] = process.argv.slice(2);
const client = new HealthClient(address, credentials.createInsecure());
client.check({ service }, { deadline: new Date(Date.now() + TIMEOUT_MS) }, (err, res) => {
  client.close();
  if (err) {
    process.stderr.write(`criu-gateway-health: ${address}: ${err.details || err.message}\n`);
    process.exitCode = 1;
  } else if (res.status !== Serving.SERVING) {
    process.stderr.write(`criu-gateway-health: ${address}: ${Serving[res.status] ?? res.status}\n`);
    process.exitCode = 1;
  }
});
