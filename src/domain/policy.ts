// Compatibility re-export for src/cli/main.ts, which imports PolicyError from here; the policy
// lives in src/auth/. Goes when the CLI imports from src/auth/ itself.
export { PolicyError } from "../auth/parsePolicy.js";
