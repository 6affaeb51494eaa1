// The policy file, read and validated for the gateway (and for `criu-gateway policy-check`).
import { readFileSync } from "node:fs";
import { parsePolicy } from "../auth/parsePolicy.js";
import { defaultPolicy, type Policy } from "../auth/policy.js";
import { RPC_NAMES } from "../grpc/rpcNames.js";

/** Reads and validates a policy file (the built-in default without one); throws PolicyError naming the mistake. */
export function loadPolicy(path: string | undefined): Policy {
  if (path === undefined) return defaultPolicy();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`policy ${path} cannot be read: ${(err as Error).message}`);
  }
  return parsePolicy(text, path, RPC_NAMES);
}
