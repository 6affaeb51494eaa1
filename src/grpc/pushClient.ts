// The gateway as a client of another gateway, for PushCheckpoint: one connection per push to a
// target the configuration lists, with the TLS files it names (read at each push, so renewed
// certificates are used without a restart), and the target's refusal passed on as ours.
import { readFileSync } from "node:fs";
import {
  Client,
  type ClientWritableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { type ImportCheckpointRequest, ImportCheckpointResponse } from "../../gen/criu/gateway/v1/gateway.js";
import type { GatewayConfig } from "../config.js";
import { type ErrorCode, GatewayError } from "../domain/errors.js";
import { statusCodeOf } from "./errorStatus.js";
import { importRequestSerializer, type PreEncoded } from "./transferCodec.js";
import { transferChannelOptions } from "./transferWindows.js";

const IMPORT_PATH = "/criu.gateway.v1.CriuService/ImportCheckpoint";

export interface ImportStream {
  call: ClientWritableStream<ImportCheckpointRequest | PreEncoded>;
  /** The target's answer, or its status as a GatewayError naming the target. */
  response: Promise<ImportCheckpointResponse>;
  close(): void;
}

/** FAILED_PRECONDITION unless `target` is one of the configured push targets. */
export function checkPushTarget(config: Pick<GatewayConfig, "pushTargets">, target: string): void {
  if (config.pushTargets.includes(target)) return;
  const allowed =
    config.pushTargets.length === 0
      ? "none (its --push-target list is empty)"
      : config.pushTargets.join(", ");
  throw new GatewayError(
    "FAILED_PRECONDITION",
    `this gateway is not configured to push to ${JSON.stringify(target.slice(0, 200))}; the targets it may push to: ${allowed}`,
  );
}

/** Opens an ImportCheckpoint call on the target. */
export function openImportStream(config: Pick<GatewayConfig, "pushTls">, target: string): ImportStream {
  const client = new Client(target, targetCredentials(config, target), {
    ...transferChannelOptions,
    ...(config.pushTls?.serverName ? { "grpc.ssl_target_name_override": config.pushTls.serverName } : {}),
  });
  let call: ClientWritableStream<ImportCheckpointRequest | PreEncoded> | undefined;
  const response = new Promise<ImportCheckpointResponse>((resolve, reject) => {
    call = client.makeClientStreamRequest(
      IMPORT_PATH,
      importRequestSerializer,
      (bytes: Buffer) => ImportCheckpointResponse.decode(bytes),
      new Metadata(),
      {},
      (err: ServiceError | null, res?: ImportCheckpointResponse) => {
        if (err || !res) reject(fromTarget(target, err));
        else resolve(res);
      },
    );
  });
  if (!call) throw new Error("grpc-js did not start the call");
  return { call, response, close: () => client.close() };
}

/** The credentials for a call to `target`: none over a unix socket, the push TLS settings over TCP. */
export function targetCredentials(config: Pick<GatewayConfig, "pushTls">, target: string) {
  if (target.startsWith("unix:")) return credentials.createInsecure();
  const tls = config.pushTls;
  if (!tls)
    throw new GatewayError("FAILED_PRECONDITION", `pushing to ${target} needs TLS settings (--push-tls-ca)`);
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `the gateway's ${what} for pushes cannot be read; see its log`,
        undefined,
        { cause: err },
      );
    }
  };
  return credentials.createSsl(
    read("CA file", tls.caFile),
    tls.keyFile === undefined ? null : read("key file", tls.keyFile),
    tls.certFile === undefined ? null : read("certificate file", tls.certFile),
  );
}

/** The target's status as ours, its message prefixed with where it came from. */
export function fromTarget(target: string, err: ServiceError | null): GatewayError {
  if (!err) return new GatewayError("INTERNAL", `target ${target} answered nothing`);
  const name = status[err.code] as ErrorCode | undefined;
  let code: ErrorCode = "UNAVAILABLE";
  try {
    if (name !== undefined && statusCodeOf(name) === err.code) code = name;
  } catch {
    // A status the gateway's errors do not name (UNKNOWN, OUT_OF_RANGE): the target failed.
  }
  return new GatewayError(code, `target ${target}: ${err.details || status[err.code]}`);
}
