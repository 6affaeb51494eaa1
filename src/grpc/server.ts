// Compatibility re-exports for src/cli/main.ts, which imports the gateway's start from here; the
// gateway is assembled in src/app/. Goes when the CLI imports from src/app/ itself.
export { loadPolicy } from "../app/loadPolicy.js";
export { startGateway } from "../app/startGateway.js";
