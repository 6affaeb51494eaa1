// copy, export, import: checkpoints that travel. An export file is the export stream itself,
// length-delimited, so `import` sends it on without decoding its chunks.
import { Client, type ClientWritableStream, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  CriuServiceClient,
  ExportCheckpointRequest,
  ExportCheckpointResponse,
  ImportCheckpointRequest,
  ImportCheckpointResponse,
  type PushCheckpointResponse,
  TransferCompression,
} from "../../../gen/criu/gateway/v1/gateway.js";
import { DEFAULT_ADDRESS } from "../../config.js";
import { BoundedWriter, TransferStats } from "../../grpc/boundedWriter.js";
import { delimited, readDelimited } from "../../grpc/transferCodec.js";
import { type Args, UsageError } from "../command.js";
import type { COPY_OPTIONS, EXPORT_OPTIONS, IMPORT_OPTIONS } from "../commands/transfer.js";
import { type ConnectionValues, channel } from "../connection.js";
import { startProgress } from "../progress.js";

const SERVICE = "/criu.gateway.v1.CriuService";
/** The largest message an export file may hold: a manifest of many files, or a chunk. */
const MAX_FILE_MESSAGE_BYTES = 16 * 1024 * 1024;

const COMPRESSION: Record<string, TransferCompression> = {
  none: TransferCompression.TRANSFER_COMPRESSION_NONE,
  zstd: TransferCompression.TRANSFER_COMPRESSION_ZSTD,
};

function compressionOf(name: string | undefined): TransferCompression {
  return name === undefined
    ? TransferCompression.TRANSFER_COMPRESSION_UNSPECIFIED
    : (COMPRESSION[name] ?? TransferCompression.TRANSFER_COMPRESSION_UNSPECIFIED);
}

function addressOf(values: ConnectionValues): string {
  return values.addr ?? process.env.CRIU_GATEWAY_ADDR ?? DEFAULT_ADDRESS;
}

export async function copy({ values, positionals }: Args<typeof COPY_OPTIONS>): Promise<number> {
  const { creds, options } = channel(values);
  return copyTo(new CriuServiceClient(addressOf(values), creds, options), {
    checkpointId: positionals[0]!,
    target: values.to,
    targetCheckpointId: values.as ?? "",
    includeParents: values["include-parents"] ?? false,
    compression: compressionOf(values.compression),
  });
}

export async function exportCheckpoint({
  values,
  positionals,
}: Args<typeof EXPORT_OPTIONS>): Promise<number> {
  if (process.stdout.isTTY) throw new UsageError("export writes a binary stream: redirect it to a file");
  const { creds, options } = channel(values);
  const client = new Client(addressOf(values), creds, options);
  try {
    return await exportTo(client, {
      checkpointId: positionals[0]!,
      includeParents: values["include-parents"] ?? false,
      compression: compressionOf(values.compression),
    });
  } finally {
    client.close();
  }
}

export async function importCheckpoint({
  values,
  positionals,
}: Args<typeof IMPORT_OPTIONS>): Promise<number> {
  if (process.stdin.isTTY) throw new UsageError("import reads an export file: redirect it to standard input");
  const { creds, options } = channel(values);
  const client = new Client(addressOf(values), creds, options);
  try {
    return await importFrom(client, positionals[0] ?? "", values.json ?? false);
  } finally {
    client.close();
  }
}

async function copyTo(
  stub: CriuServiceClient,
  request: Parameters<CriuServiceClient["pushCheckpoint"]>[0],
): Promise<number> {
  const stream = stub.pushCheckpoint(request);
  process.once("SIGINT", () => stream.cancel());
  const progress = startProgress(`copy ${request.checkpointId} to ${request.target}`);
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on("data", (m: PushCheckpointResponse) => {
        if (m.progress) progress.advance(m.progress.bytesDone, m.progress.bytesTotal);
        if (m.result) {
          progress.done();
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
    progress.done();
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
