// Requests whose bytes do not decode. grpc-js answers a throwing deserializer with INTERNAL before
// any handler runs, which blames the gateway for the caller's mistake; instead the deserializer
// hands the handler a marker, and the handler answers INVALID_ARGUMENT naming the message type.
// The deserializer also notes each request's size on the wire, for the policy's per-caller limit.
import type { ServiceDefinition } from "@grpc/grpc-js";
import { invalidArgument } from "../domain/errors.js";
import type { CallHandler, CallMiddleware, IdentifiedContext } from "./callContext.js";

const UNDECODABLE = Symbol("undecodable request");
const WIRE_BYTES = Symbol("request size on the wire");

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
          const request: unknown = method.requestDeserialize(bytes);
          if (typeof request === "object" && request !== null) {
            Object.defineProperty(request, WIRE_BYTES, { value: bytes.length, enumerable: false });
          }
          return request;
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

/** The size a request had on the wire, when it came through a deserializer made here. */
export function wireBytes(request: unknown): number | undefined {
  if (typeof request !== "object" || request === null) return undefined;
  const size = (request as { [WIRE_BYTES]?: unknown })[WIRE_BYTES];
  return typeof size === "number" ? size : undefined;
}

/** The pipeline's decode check: the first message and every later one must have decoded. */
export const checkDecoded: CallMiddleware<IdentifiedContext, IdentifiedContext> = <Req, Res>(
  next: CallHandler<Req, Res, IdentifiedContext>,
): CallHandler<Req, Res, IdentifiedContext> =>
  async function* decoded(input, context) {
    assertDecoded(input.first);
    const rest = (async function* () {
      for await (const message of input.rest) {
        assertDecoded(message);
        yield message;
      }
    })();
    yield* next({ first: input.first, rest }, context);
  };
