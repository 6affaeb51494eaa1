// criu-gateway copy, export and import: checkpoints that travel. Each command is one function;
// main.ts passes in how to reach a gateway and how to report a usage mistake.
import { parseArgs } from "node:util";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientWritableStream,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  CriuServiceClient,
  ExportCheckpointRequest,
  ExportCheckpointResponse,
  ImportCheckpointRequest,
  ImportCheckpointResponse,
  type PushCheckpointResponse,
  TransferCompression,
} from "../../gen/criu/gateway/v1/gateway.js";
import { DEFAULT_ADDRESS, type GatewayConfig } from "../config.js";
import { BoundedWriter, TransferStats } from "../grpc/boundedWriter.js";
import { delimited, readDelimited } from "../grpc/transferCodec.js";

export const TRANSFER_USAGE = `  copy ID --to ADDR [--as ID2] [--include-parents] [--compression none|zstd]
                               have the gateway push checkpoint ID to the gateway at ADDR (one of
                               its --push-target addresses), as ID2 (default ID)
  export ID [--include-parents] [--compression none|zstd] > FILE
                               write checkpoint ID (with its parent chain) to standard output
  import [ID2] < FILE          import an exported checkpoint, as ID2 (default: its id there)
`;

export interface TransferCliDeps {
  channel(values: Record<string, string | boolean | undefined>): {
    creds: ChannelCredentials;
    options: ChannelOptions;
  };
  tlsFlags: Record<string, { type: "string" }>;
  usageError(message: string): Error;
}

const SERVICE = "/criu.gateway.v1.CriuService";
/** The largest message an export file may hold: a manifest of many files, or a chunk. */
const MAX_FILE_MESSAGE_BYTES = 16 * 1024 * 1024;

const COMPRESSION: Record<string, TransferCompression> = {
  none: TransferCompression.TRANSFER_COMPRESSION_NONE,
  zstd: TransferCompression.TRANSFER_COMPRESSION_ZSTD,
};

export async function transferCommand(
  command: string,
  args: string[],
  deps: TransferCliDeps,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      addr: { type: "string" },
      json: { type: "boolean" },
      to: { type: "string" },
      as: { type: "string" },
      "include-parents": { type: "boolean" },
      compression: { type: "string" },
      ...deps.tlsFlags,
    },
  });
  const addr = values.addr ?? process.env.CRIU_GATEWAY_ADDR ?? DEFAULT_ADDRESS;
  const { creds, options } = deps.channel(values);
  const compression =
    values.compression === undefined
      ? TransferCompression.TRANSFER_COMPRESSION_UNSPECIFIED
      : COMPRESSION[values.compression];
  if (compression === undefined)
    throw deps.usageError(`--compression ${values.compression}: use none or zstd`);
  const id = positionals[0] ?? "";
  const client = new Client(addr, creds, options);
  try {
    switch (command) {
      case "copy": {
        if (!id || !values.to) throw deps.usageError("copy needs a checkpoint id and --to ADDR");
        return await copy(new CriuServiceClient(addr, creds, options), {
          checkpointId: id,
          target: values.to,
          targetCheckpointId: values.as ?? "",
          includeParents: values["include-parents"] ?? false,
          compression,
        });
      }
      case "export":
        if (!id) throw deps.usageError("export needs a checkpoint id");
        if (process.stdout.isTTY)
          throw deps.usageError("export writes a binary stream: redirect it to a file");
        return await exportTo(client, {
          checkpointId: id,
          includeParents: values["include-parents"] ?? false,
          compression,
        });
      case "import":
        if (process.stdin.isTTY)
          throw deps.usageError("import reads an export file: redirect it to standard input");
        return await importFrom(client, id, values.json ?? false);
      default:
        throw deps.usageError(`unknown command ${command}`);
    }
  } finally {
    client.close();
  }
}

async function copy(
  stub: CriuServiceClient,
  request: Parameters<CriuServiceClient["pushCheckpoint"]>[0],
): Promise<number> {
  const stream = stub.pushCheckpoint(request);
  process.once("SIGINT", () => stream.cancel());
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on("data", (m: PushCheckpointResponse) => {
        if (m.progress) {
          const { bytesDone, bytesTotal } = m.progress;
          process.stderr.write(
            `${Math.floor((100 * bytesDone) / Math.max(bytesTotal, 1))}% (${bytesDone} of ${bytesTotal} bytes)\n`,
          );
        }
        if (m.result) {
          const r = m.result;
          process.stdout.write(
            `copied to ${request.target} as ${r.checkpoint?.checkpointId}: ${r.bytes} bytes, ${r.wireBytes} on the wire\n`,
          );
        }
      });
      stream.on("error", reject);
      stream.on("end", () => resolve(0));
    });
  } finally {
    stub.close();
  }
}

/** Writes every message of the export to standard output as it comes, length-delimited. */
async function exportTo(client: Client, request: ExportCheckpointRequest): Promise<number> {
  const stream = client.makeServerStreamRequest(
    `${SERVICE}/ExportCheckpoint`,
    (r: ExportCheckpointRequest) => Buffer.from(ExportCheckpointRequest.encode(r).finish()),
    (bytes: Buffer) => bytes,
    request,
    new Metadata(),
    {},
  );
  process.once("SIGINT", () => stream.cancel());
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (message: Buffer) => {
      let ok = true;
      for (const part of delimited(message)) ok = process.stdout.write(part) && ok;
      if (!ok) {
        stream.pause();
        process.stdout.once("drain", () => stream.resume());
      }
    });
    stream.on("error", reject);
    stream.on("end", resolve);
  });
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  return 0;
}

/**
 * Sends an export file from standard input: the manifest wrapped in a header, the chunk
 * messages as they are (they are valid ImportCheckpointRequest messages).
 */
async function importFrom(client: Client, checkpointId: string, json: boolean): Promise<number> {
  let call: ClientWritableStream<Buffer> | undefined;
  const response = new Promise<ImportCheckpointResponse>((resolve, reject) => {
    call = client.makeClientStreamRequest(
      `${SERVICE}/ImportCheckpoint`,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => ImportCheckpointResponse.decode(bytes),
      new Metadata(),
      {},
      (err: ServiceError | null, res?: ImportCheckpointResponse) =>
        err || !res ? reject(err) : resolve(res),
    );
  });
  if (!call) throw new Error("the call did not start");
  const stream = call;
  process.once("SIGINT", () => stream.cancel());
  const writer = new BoundedWriter(stream, new TransferStats());
  response.catch((err: unknown) => writer.fail(err));
  let first = true;
  try {
    for await (const message of readDelimited(process.stdin, MAX_FILE_MESSAGE_BYTES)) {
      if (first) {
        first = false;
        const manifest = ExportCheckpointResponse.decode(message).manifest;
        if (!manifest) throw new Error("standard input does not start with a manifest: not an export file");
        await writer.write(
          Buffer.from(ImportCheckpointRequest.encode({ header: { checkpointId, manifest } }).finish()),
        );
      } else {
        await writer.write(message);
      }
    }
    if (first) throw new Error("standard input is empty: no export file");
  } catch (err) {
    // A refusal of the gateway arrives here through the writer; anything else is the file's
    // fault, and cancelling makes the gateway drop what it staged.
    stream.cancel();
    response.catch(() => {});
    throw err;
  }
  stream.end();
  const res = await response;
  process.stdout.write(
    json
      ? `${JSON.stringify(res, null, 2)}\n`
      : `imported checkpoint ${res.checkpoint?.checkpointId} (${res.bytes} bytes${res.parents.length > 0 ? `, with parents ${res.parents.map((p) => p.checkpointId).join(", ")}` : ""})\n`,
  );
  return 0;
}

/** The options of `serve` for pushes, for parseArgs. */
export const PUSH_SERVE_OPTIONS = {
  "push-target": { type: "string", multiple: true },
  "push-tls-ca": { type: "string" },
  "push-tls-cert": { type: "string" },
  "push-tls-key": { type: "string" },
  "push-tls-server-name": { type: "string" },
} as const;

export const PUSH_SERVE_USAGE = `        [--push-target unix:PATH|HOST:PORT]... [--push-tls-ca FILE [--push-tls-cert FILE --push-tls-key FILE]
        [--push-tls-server-name NAME]]
        the gateways PushCheckpoint (criu-gateway copy) may send to; TCP targets over TLS, this
        gateway showing them --push-tls-cert, which their policies judge
`;

/** The push settings of `serve`'s options, for resolveConfig (which validates them). */
export function pushSettings(values: {
  "push-target"?: string[] | undefined;
  "push-tls-ca"?: string | undefined;
  "push-tls-cert"?: string | undefined;
  "push-tls-key"?: string | undefined;
  "push-tls-server-name"?: string | undefined;
}): Pick<GatewayConfig, "pushTargets" | "pushTls"> {
  const ca = values["push-tls-ca"];
  return {
    pushTargets: values["push-target"] ?? [],
    pushTls:
      ca === undefined
        ? undefined
        : {
            caFile: ca,
            certFile: values["push-tls-cert"],
            keyFile: values["push-tls-key"],
            serverName: values["push-tls-server-name"],
          },
  };
}
