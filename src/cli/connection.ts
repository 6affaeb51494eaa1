// How a client command reaches the gateway: the address, plain or TLS credentials, and a promise
// for a unary call. Loaded only by client commands.
import { readFileSync } from "node:fs";
import { type ChannelCredentials, type ChannelOptions, credentials, type ServiceError } from "@grpc/grpc-js";
import { CriuServiceClient } from "../../gen/criu/gateway/v1/gateway.js";
import { DEFAULT_ADDRESS } from "../config.js";
import { UsageError, type Values } from "./command.js";
import type { CONNECTION } from "./options.js";

export type ConnectionValues = Values<typeof CONNECTION>;

/**
 * HTTP/2 windows of four 1 MiB chunks, as the gateways' own transfers use
 * (src/grpc/transferWindows.ts, which the command line does not load): `export` receives
 * images, which with the default 64 KiB windows waited for a window update every 64 KiB; for
 * other commands they cost nothing.
 */
const WIDE_WINDOWS: ChannelOptions = { "grpc-node.flow_control_window": 4 * 1024 * 1024 };

/** A client of the gateway the command line names; close it when done. */
export function connect(values: ConnectionValues, addr?: string): CriuServiceClient {
  const { creds, options } = channel(values);
  return new CriuServiceClient(
    addr ?? values.addr ?? process.env.CRIU_GATEWAY_ADDR ?? DEFAULT_ADDRESS,
    creds,
    options,
  );
}

/** Plain for unix sockets and --insecure loopback; TLS when a CA or client certificate is given. */
export function channel(values: ConnectionValues): { creds: ChannelCredentials; options: ChannelOptions } {
  const env = process.env;
  const ca = values["tls-ca"] ?? env.CRIU_GATEWAY_TLS_CA;
  const cert = values["tls-cert"] ?? env.CRIU_GATEWAY_TLS_CERT;
  const key = values["tls-key"] ?? env.CRIU_GATEWAY_TLS_KEY;
  const serverName = values["tls-server-name"] ?? env.CRIU_GATEWAY_TLS_SERVER_NAME;
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  const windows = WIDE_WINDOWS;
  if (ca === undefined && cert === undefined)
    return { creds: credentials.createInsecure(), options: windows };
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag} ${path}: ${(err as Error).message}`);
    }
  };
  return {
    creds: credentials.createSsl(
      ca === undefined ? null : read("--tls-ca", ca),
      key === undefined ? null : read("--tls-key", key),
      cert === undefined ? null : read("--tls-cert", cert),
    ),
    options: serverName ? { ...windows, "grpc.ssl_target_name_override": serverName } : windows,
  };
}

/** A unary call as a promise. */
export function call<Res>(
  invoke: (callback: (err: ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Runs `use` with a client, closing it however `use` ends. */
export async function withClient<T>(
  values: ConnectionValues,
  use: (client: CriuServiceClient) => Promise<T>,
): Promise<T> {
  const client = connect(values);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
