// A real gateway on a unix socket in a temp dir, with a real gRPC client, for integration tests.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import {
  CriuOptions,
  CriuServiceClient,
  type DumpResponse,
  type RestoreResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { type RunningGateway, startGateway } from "../../src/app/startGateway.js";
import type { AuditRecord } from "../../src/auth/auditLog.js";
import { type GatewayConfig, resolveConfig } from "../../src/config.js";
import { silentLogger } from "../../src/log.js";
import { packageRoot } from "../../src/packageRoot.js";

export function criuBin(): string {
  return readFileSync(join(packageRoot, ".criu", "criu-path"), "utf8").trim();
}

export interface TestGateway {
  gateway: RunningGateway;
  client: CriuServiceClient;
  dir: string;
  imagesRoot: string;
  address: string;
  /** Audit records of every call so far, in order. */
  audit: AuditRecord[];
  close(): Promise<void>;
}

export async function startTestGateway(
  overrides: Partial<GatewayConfig> | ((dir: string) => Partial<GatewayConfig>) = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), "criu-gw-test-"));
  const address = `unix:${join(dir, "gw.sock")}`;
  const imagesRoot = join(dir, "images");
  const config = resolveConfig({
    listen: [address],
    imagesRoot,
    criuBin: criuBin(),
    shutdownGraceMs: 5_000,
    // Tests count the workers a call leaves behind: none are started ahead of need unless a test
    // asks (test/integration/warmWorkers.test.ts).
    warmWorkers: 0,
    ...(typeof overrides === "function" ? overrides(dir) : overrides),
  });
  const audit: AuditRecord[] = [];
  const gateway = await startGateway(config, silentLogger, { audit: (r) => audit.push(r) });
  const client = new CriuServiceClient(address, credentials.createInsecure());
  return {
    gateway,
    client,
    dir,
    imagesRoot,
    address,
    audit,
    async close() {
      client.close();
      await gateway.shutdown(1_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with a unary call's response, or rejects with its ServiceError. */
export function call<Res>(
  invoke: (callback: (err: ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The ServiceError a call fails with; fails the test when the call succeeds. */
export async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("the call succeeded, but a failure was expected");
}

/** Children of this process that are CRIU workers: must be none between tests. */
export function criuChildren(): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && comm.startsWith("criu")) out.push(Number(name));
    } catch {
      // The process went away while we looked.
    }
  }
  return out;
}

/** A Dump call with options given as a partial CriuOptions. */
export function dumpWith(
  client: CriuServiceClient,
  checkpointId: string,
  options: Partial<CriuOptions>,
  parentCheckpointId = "",
): Promise<DumpResponse> {
  return call<DumpResponse>((cb) =>
    client.dump({ checkpointId, parentCheckpointId, options: CriuOptions.fromPartial(options) }, cb),
  );
}

/** A Restore call with options given as a partial CriuOptions. */
export function restoreWith(
  client: CriuServiceClient,
  checkpointId: string,
  options: Partial<CriuOptions> = {},
): Promise<RestoreResponse> {
  return call<RestoreResponse>((cb) =>
    client.restore({ checkpointId, options: CriuOptions.fromPartial(options) }, cb),
  );
}

/**
 * A checkpoint as the gateway publishes it, written straight into the store: for kinds this host
 * cannot make with CRIU. `meta` overrides meta.json's fields.
 */
export function plantCheckpoint(imagesRoot: string, id: string, meta: Record<string, unknown>): string {
  const dir = join(imagesRoot, id);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(
    join(dir, "meta.json"),
    JSON.stringify({
      formatVersion: 1,
      createTime: new Date().toISOString(),
      rootPid: 0,
      criuVersion: "4.1.1",
      leaveRunning: false,
      ...meta,
    }),
  );
  return dir;
}
