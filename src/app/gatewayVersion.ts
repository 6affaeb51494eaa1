// The gateway's own version, as package.json gives it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../packageRoot.js";

export function gatewayVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}
