// The package's root directory, found from this file whether it runs from src/ or dist/src/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function find(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "proto"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("cannot find criu-gateway's package root (package.json beside proto/)");
}

export const packageRoot: string = find();
