// Typed access to the native systemd addon (native/systemd.cc): sd_notify datagrams and
// close-on-exec for inherited descriptors, which Node cannot do by itself.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../packageRoot.js";

interface SystemdAddon {
  notify(socketPath: string, state: string): void;
  setCloexec(fd: number): void;
}

let addon: SystemdAddon | undefined;

/** Loaded on first use: a gateway that systemd does not manage never needs it. */
export function systemdAddon(): SystemdAddon {
  if (addon) return addon;
  const path = join(packageRoot, "build", "Release", "systemd.node");
  if (!existsSync(path)) {
    throw new Error("the native systemd addon is not built: run `npm run build:native` (npm start does it)");
  }
  addon = createRequire(import.meta.url)(path) as SystemdAddon;
  return addon;
}
