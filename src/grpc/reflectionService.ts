// gRPC server reflection (grpc.reflection.v1 and v1alpha) served from a FileDescriptorSet, such as
// gen/descriptors.binpb from `buf build`.
//
// Each file is answered with its original FileDescriptorProto bytes, dependency list included, so
// strict clients (grpcurl, Python's descriptor pool) can resolve imported types such as
// google.protobuf.Timestamp. @grpc/reflection is not used: it synthesizes one file per package
// without dependencies, which such clients reject.
//
// Wiring:
//   const set = readFileSync(join(packageRoot, "gen/descriptors.binpb"));
//   addReflectionServices(server, set);
//
// list_services reports every service the set defines, unless `options.services` names them; the
// set is built from proto/, which is exactly what the gateway serves, reflection included.
import type * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection.js";

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const INTERNAL = 13;

// v1 and v1alpha messages are identical; the handler is written against v1's generated types and
// serves both services.
type Request = v1.ServerReflectionRequest;
type Response = v1.ServerReflectionResponse;
type Answer = Omit<Response, "validHost" | "originalRequest">;

export interface ReflectionOptions {
  /**
   * Fully-qualified names list_services reports, e.g. "criu.gateway.v1.CriuService". Default:
   * every service the descriptor set defines.
   */
  services?: readonly string[];
}

// The parts of google.protobuf descriptors the index reads, as protobufjs decodes them.
interface FieldDesc {
  name: string;
  number: number;
  extendee: string;
}
interface EnumDesc {
  name: string;
  value: { name: string }[];
}
interface MessageDesc {
  name: string;
  field: FieldDesc[];
  oneofDecl: { name: string }[];
  nestedType: MessageDesc[];
  enumType: EnumDesc[];
  extension: FieldDesc[];
}
interface ServiceDesc {
  name: string;
  method: { name: string }[];
}
interface FileDesc {
  name: string;
  package: string;
  dependency: string[];
  messageType: MessageDesc[];
  enumType: EnumDesc[];
  service: ServiceDesc[];
  extension: FieldDesc[];
}

interface FileEntry {
  /** The FileDescriptorProto exactly as it appeared in the set. */
  bytes: Buffer;
  dependencies: string[];
}

/** Files and symbols of one FileDescriptorSet, looked up by name. */
export class DescriptorIndex {
  private readonly files = new Map<string, FileEntry>();
  /** Fully-qualified symbol (no leading dot) → name of the file defining it. */
  private readonly symbols = new Map<string, string>();
  private readonly messages = new Set<string>();
  /** Extended message → extension field number → name of the file defining the extension. */
  private readonly extensions = new Map<string, Map<number, string>>();
  readonly services: string[] = [];

  constructor(descriptorSet: Uint8Array) {
    for (const bytes of rawFiles(descriptorSet)) {
      const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as FileDesc;
      // A valid set names each file once; keep the first if it does not.
      if (this.files.has(file.name)) continue;
      this.files.set(file.name, { bytes, dependencies: file.dependency });
      this.indexFile(file);
    }
  }

  hasFile(name: string): boolean {
    return this.files.has(name);
  }

  fileOfSymbol(symbol: string): string | undefined {
    return this.symbols.get(symbol);
  }

  isMessage(name: string): boolean {
    return this.messages.has(name);
  }

  fileOfExtension(extendee: string, fieldNumber: number): string | undefined {
    return this.extensions.get(extendee)?.get(fieldNumber);
  }

  extensionNumbers(extendee: string): number[] {
    return [...(this.extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * The file's bytes followed by those of its transitive dependencies, breadth first, leaving out
   * dependencies already in `sent` (the files this stream has carried) and adding what it returns.
   * The file asked for is always included, as gRPC's reference servers do. Dependencies missing
   * from the set are left out: nothing better can be sent for them.
   */
  withDependencies(name: string, sent: Set<string>): Buffer[] {
    const out: Buffer[] = [];
    const queue = [name];
    const seen = new Set<string>();
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (seen.has(next)) continue;
      seen.add(next);
      const entry = this.files.get(next);
      if (!entry) continue;
      if (next === name || !sent.has(next)) {
        out.push(entry.bytes);
        sent.add(next);
      }
      queue.push(...entry.dependencies);
    }
    return out;
  }

  private define(symbol: string, file: string): void {
    if (!this.symbols.has(symbol)) this.symbols.set(symbol, file);
  }

  private indexFile(file: FileDesc): void {
    const scope = file.package;
    for (const message of file.messageType) this.indexMessage(message, scope, file.name);
    for (const e of file.enumType) this.indexEnum(e, scope, file.name);
    for (const ext of file.extension) this.indexExtension(ext, scope, file.name);
    for (const service of file.service) {
      const full = qualify(scope, service.name);
      this.define(full, file.name);
      this.services.push(full);
      for (const method of service.method) this.define(`${full}.${method.name}`, file.name);
    }
  }

  private indexMessage(message: MessageDesc, scope: string, file: string): void {
    const full = qualify(scope, message.name);
    this.define(full, file);
    this.messages.add(full);
    for (const field of message.field) this.define(`${full}.${field.name}`, file);
    for (const oneof of message.oneofDecl) this.define(`${full}.${oneof.name}`, file);
    for (const nested of message.nestedType) this.indexMessage(nested, full, file);
    for (const e of message.enumType) this.indexEnum(e, full, file);
    for (const ext of message.extension) this.indexExtension(ext, full, file);
  }

  private indexEnum(e: EnumDesc, scope: string, file: string): void {
    this.define(qualify(scope, e.name), file);
    // Enum values are scoped beside their enum, not inside it (protobuf's C++ scoping rule).
    for (const value of e.value) this.define(qualify(scope, value.name), file);
  }

  private indexExtension(ext: FieldDesc, scope: string, file: string): void {
    this.define(qualify(scope, ext.name), file);
    const extendee = stripDot(ext.extendee);
    let numbers = this.extensions.get(extendee);
    if (!numbers) {
      numbers = new Map();
      this.extensions.set(extendee, numbers);
    }
    if (!numbers.has(ext.number)) numbers.set(ext.number, file);
  }
}

function qualify(scope: string, name: string): string {
  return scope ? `${scope}.${name}` : name;
}

function stripDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}

/** Each FileDescriptorProto of a FileDescriptorSet, as copies of its bytes on the wire. */
function rawFiles(descriptorSet: Uint8Array): Buffer[] {
  const reader = protobuf.Reader.create(descriptorSet);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    // FileDescriptorSet.file is field 1, length-delimited; nothing else is defined.
    if (tag === ((1 << 3) | 2)) files.push(Buffer.from(reader.bytes()));
    else reader.skipType(tag & 7);
  }
  return files;
}

function error(code: number, message: string): Answer {
  return { errorResponse: { errorCode: code, errorMessage: message } };
}

function answer(
  index: DescriptorIndex,
  services: readonly string[],
  req: Request,
  sent: Set<string>,
): Answer {
  const files = (name: string): Answer => ({
    fileDescriptorResponse: { fileDescriptorProto: index.withDependencies(name, sent) },
  });
  if (req.fileByFilename !== undefined) {
    const name = req.fileByFilename;
    return index.hasFile(name) ? files(name) : error(NOT_FOUND, `file not found: ${JSON.stringify(name)}`);
  }
  if (req.fileContainingSymbol !== undefined) {
    const symbol = stripDot(req.fileContainingSymbol);
    const file = index.fileOfSymbol(symbol);
    return file !== undefined ? files(file) : error(NOT_FOUND, `symbol not found: ${JSON.stringify(symbol)}`);
  }
  if (req.fileContainingExtension !== undefined) {
    const type = stripDot(req.fileContainingExtension.containingType);
    const fieldNumber = req.fileContainingExtension.extensionNumber;
    const file = index.fileOfExtension(type, fieldNumber);
    return file !== undefined
      ? files(file)
      : error(NOT_FOUND, `extension not found: number ${fieldNumber} of ${JSON.stringify(type)}`);
  }
  if (req.allExtensionNumbersOfType !== undefined) {
    const type = stripDot(req.allExtensionNumbersOfType);
    if (!index.isMessage(type)) return error(NOT_FOUND, `message type not found: ${JSON.stringify(type)}`);
    return {
      allExtensionNumbersResponse: { baseTypeName: type, extensionNumber: index.extensionNumbers(type) },
    };
  }
  if (req.listServices !== undefined) {
    return { listServicesResponse: { service: services.map((name) => ({ name })) } };
  }
  // Answered rather than failing the stream, so one bad request does not cost the client the rest.
  return error(INVALID_ARGUMENT, "the request sets none of message_request's fields");
}

/**
 * The ServerReflectionInfo handler for a descriptor set, usable for both v1 and v1alpha. Each
 * stream answers its requests in order, one response each, and ends when the client ends it.
 */
export function createReflectionHandler(
  descriptorSet: Uint8Array,
  options: ReflectionOptions = {},
): grpc.handleBidiStreamingCall<Request, Response> {
  const index = new DescriptorIndex(descriptorSet);
  const services = [...(options.services ?? index.services)].sort();
  return (call) => {
    // Files this stream has carried; dependencies are not sent twice.
    const sent = new Set<string>();
    call.on("data", (req: Request) => {
      if (call.cancelled) return;
      let body: Answer;
      try {
        body = answer(index, services, req, sent);
      } catch (err) {
        body = error(INTERNAL, `reflection failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      // Stop reading while the client is not reading, so a flood of requests cannot pile up answers.
      if (!call.write({ validHost: req.host, originalRequest: req, ...body })) {
        call.pause();
        call.once("drain", () => call.resume());
      }
    });
    call.on("end", () => call.end());
  };
}

/**
 * Registers grpc.reflection.v1.ServerReflection and grpc.reflection.v1alpha.ServerReflection on
 * `server`, answering from `descriptorSet` (a serialized google.protobuf.FileDescriptorSet).
 */
export function addReflectionServices(
  server: grpc.Server,
  descriptorSet: Uint8Array,
  options: ReflectionOptions = {},
): void {
  const handler = createReflectionHandler(descriptorSet, options);
  server.addService(v1.ServerReflectionService, { serverReflectionInfo: handler });
  server.addService(v1alpha.ServerReflectionService, { serverReflectionInfo: handler });
}
