// Encoding and decoding of CRIU's criu_req / criu_resp (proto/criu/rpc.proto).
//
// The TypeScript shapes are ts-proto's (gen/criu/rpc.ts), but the bytes are made by protobufjs from
// the .proto at run time: ts-proto leaves out proto2 optional fields that equal their default, and
// CRIU checks presence (`has_*`) for many options, so an explicit `timeout: 0` or
// `manage_cgroups_mode: IGNORE` would silently vanish. protobufjs writes every field that is set.
import { join } from "node:path";
import protobuf from "protobufjs";
import type { criuReq, criuResp } from "../../gen/criu/rpc.js";
import { criuReqType } from "../../gen/criu/rpc.js";
import { packageRoot } from "../packageRoot.js";

export type { criuReq as CriuReq, criuResp as CriuResp } from "../../gen/criu/rpc.js";
export { criuReqType as CriuReqType } from "../../gen/criu/rpc.js";

const root = protobuf.loadSync(join(packageRoot, "proto", "criu", "rpc.proto"));
const reqType = root.lookupType("criu_req");
const respType = root.lookupType("criu_resp");

const toObjectOptions: protobuf.IConversionOptions = { enums: Number, longs: Number, defaults: false };

/** Drops keys whose value is undefined, and empty repeated fields, so only set fields are encoded. */
function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(compact);
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[key] = compact(v);
  }
  return out;
}

export function encodeRequest(req: criuReq): Uint8Array {
  const plain = compact(req) as Record<string, unknown>;
  const problem = reqType.verify(plain);
  if (problem) throw new Error(`invalid criu_req: ${problem}`);
  return reqType.encode(reqType.fromObject(plain)).finish();
}

/** Throws when the bytes are not a complete criu_resp (garbage, truncation, missing required fields). */
export function decodeResponse(bytes: Uint8Array): criuResp {
  const message = respType.decode(bytes);
  return respType.toObject(message, toObjectOptions) as criuResp;
}

/** For tests and the fake worker: the reverse directions. */
export function encodeResponse(resp: criuResp): Uint8Array {
  const plain = compact(resp) as Record<string, unknown>;
  const problem = respType.verify(plain);
  if (problem) throw new Error(`invalid criu_resp: ${problem}`);
  return respType.encode(respType.fromObject(plain)).finish();
}

export function decodeRequest(bytes: Uint8Array): criuReq {
  return reqType.toObject(reqType.decode(bytes), toObjectOptions) as criuReq;
}

export function requestTypeName(type: number): string {
  return criuReqType[type] ?? `type ${type}`;
}
