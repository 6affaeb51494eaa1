#!/usr/bin/env node
// Entry point of the criu-gateway command. Runs the compiled gateway (dist/), which `npm start`
// and `npm test` build; a clear message instead of a stack trace when it is not built yet.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    "criu-gateway is not built yet: run `npm start` (or `npm run bootstrap`) in its directory first.\n",
  );
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
