// Clients of the transfer calls for tests: whole streams gathered, hand-made streams sent.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import type {
  CriuServiceClient,
  ExportCheckpointRequest,
  ExportCheckpointResponse,
  ImportCheckpointRequest,
  ImportCheckpointResponse,
  PushCheckpointRequest,
  PushCheckpointResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { plantCheckpoint } from "./gateway.js";

/** Every message of an ExportCheckpoint, or its error. */
export function exportAll(
  client: CriuServiceClient,
  request: Partial<ExportCheckpointRequest>,
): Promise<ExportCheckpointResponse[]> {
  return gather(
    client.exportCheckpoint({ checkpointId: "", includeParents: false, compression: 0, ...request }),
  );
}

export function pushAll(
  client: CriuServiceClient,
  request: Partial<PushCheckpointRequest>,
): Promise<PushCheckpointResponse[]> {
  return gather(
    client.pushCheckpoint({
      checkpointId: "",
      target: "",
      targetCheckpointId: "",
      includeParents: false,
      compression: 0,
      ...request,
    }),
  );
}

function gather<T>(stream: NodeJS.ReadableStream & { cancel(): void }): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on("data", (m: T) => out.push(m));
    stream.on("error", reject);
    stream.on("end", () => resolve(out));
  });
}

/** Sends `messages` as an ImportCheckpoint stream (each written when the previous was taken). */
export function importStream(
  client: CriuServiceClient,
  messages: Iterable<ImportCheckpointRequest>,
): Promise<ImportCheckpointResponse> {
  return new Promise((resolve, reject) => {
    const call = client.importCheckpoint((err: ServiceError | null, res?: ImportCheckpointResponse) =>
      err || !res ? reject(err) : resolve(res),
    );
    void (async () => {
      for (const m of messages) {
        if (!call.write(m)) await new Promise((r) => call.once("drain", r));
      }
      call.end();
    })();
  });
}

/**
 * An export's messages as an import's: the header with `checkpointId` (its manifest a copy, for
 * tests to change), then the chunks.
 */
export function asImport(exported: ExportCheckpointResponse[], checkpointId = ""): ImportCheckpointRequest[] {
  const [first, ...rest] = exported;
  return [
    { header: { checkpointId, manifest: first?.manifest && structuredClone(first.manifest) } },
    ...rest.map((m) => ({ chunk: m.chunk })),
  ];
}

/** A published checkpoint made of files with random bytes of the given sizes (transfers do not read them). */
export function plantFiles(
  imagesRoot: string,
  id: string,
  sizes: Record<string, number>,
  meta: Record<string, unknown> = {},
): Record<string, Buffer> {
  const dir = plantCheckpoint(imagesRoot, id, { kind: "dump", ...meta });
  const contents: Record<string, Buffer> = {};
  for (const [name, size] of Object.entries(sizes)) {
    contents[name] = randomBytes(size);
    writeFileSync(join(dir, name), contents[name], { mode: 0o600 });
  }
  return contents;
}
