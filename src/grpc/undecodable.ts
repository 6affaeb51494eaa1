// Requests whose bytes do not decode. grpc-js answers a throwing deserializer with INTERNAL before
// any handler runs, which blames the gateway for the caller's mistake; instead the deserializer
// hands the handler a marker, and the handler answers INVALID_ARGUMENT naming the message type.
import type { ServiceDefinition } from "@grpc/grpc-js";
import { invalidArgument } from "../domain/errors.js";

const UNDECODABLE = Symbol("undecodable request");

interface Undecodable {
  [UNDECODABLE]: string;
}

/** The service with every request deserializer made total: bad bytes become a marker. */
export function withTotalDeserializers<S extends ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const type = method.path.slice(method.path.lastIndexOf("/") + 1);
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return {
            [UNDECODABLE]: `the ${type} request is not a valid protobuf message: ${(err as Error).message}`,
          };
        }
      },
    };
  }
  return out as S;
}

/** Throws INVALID_ARGUMENT when a request did not decode. */
export function assertDecoded(request: unknown): void {
  if (typeof request === "object" && request !== null && UNDECODABLE in request) {
    throw invalidArgument((request as Undecodable)[UNDECODABLE]);
  }
}
