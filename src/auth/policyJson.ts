// Shape checks of a parsed JSON document, each naming the place at fault: the policy parser's
// vocabulary.

export type Json = unknown;

/** A mistake in the policy file, with its place ("policy.json: grants[1].rpcs[0]: …"). */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
}

export function object(json: Json, at: string, known: string[]): Record<string, Json> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new PolicyError(`${at}: must be an object`);
  }
  for (const key of Object.keys(json)) {
    if (!known.includes(key))
      throw new PolicyError(`${at}: unknown key "${key}" (known: ${known.join(", ")})`);
  }
  return json as Record<string, Json>;
}

export function array(json: Json, at: string): Json[] {
  if (!Array.isArray(json)) throw new PolicyError(`${at}: must be a list`);
  return json;
}

export function string(json: Json, at: string): string {
  if (typeof json !== "string") throw new PolicyError(`${at}: must be a string`);
  return json;
}

export function nonEmpty(json: Json, at: string): string {
  const s = string(json, at);
  if (!s) throw new PolicyError(`${at}: must not be empty`);
  return s;
}

export function boolean(json: Json, at: string): boolean {
  if (typeof json !== "boolean") throw new PolicyError(`${at}: must be true or false`);
  return json;
}

export function id32(json: Json, at: string): number {
  if (typeof json !== "number" || !Number.isInteger(json) || json < 0 || json > 0xfffffffe) {
    throw new PolicyError(`${at}: must be a uid/gid (a whole number from 0 to 4294967294)`);
  }
  return json;
}

export function positivePid(n: number, at: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 4194304)
    throw new PolicyError(`${at}: pids run from 1 to 4194304`);
  return n;
}

export function count(json: Json, at: string): number {
  if (typeof json !== "number" || !Number.isInteger(json) || json < 0) {
    throw new PolicyError(`${at}: must be a whole number of at least 0`);
  }
  return json;
}
