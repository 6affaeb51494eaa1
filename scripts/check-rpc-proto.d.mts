// Types for check-rpc-proto.mjs, which stays plain JavaScript so that node 20 runs it as is.

/** Absolute path of our transcription, proto/criu/rpc.proto. */
export const defaultOursPath: string;
/** Absolute path of CRIU's images/rpc.proto in the source tree scripts/install-criu.sh unpacks. */
export const defaultTheirsPath: string;

/**
 * Semantic differences between two .proto texts, one readable line each, ours first
 * ("criu_opts.pid: number 2 vs 3"). Empty when they are equivalent. Throws when either does not parse.
 */
export function compareProtoText(oursText: string, theirsText: string): string[];

/** How many messages, fields, enums and enum values a .proto text holds. */
export function countProtoText(text: string): {
  messages: number;
  fields: number;
  enums: number;
  values: number;
};
