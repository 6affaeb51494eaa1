// Which migration modes this host can do, decided before anything is frozen: each refusal says
// what is missing and which setting or kernel feature would change the answer.
import { promises as fs } from "node:fs";
import type { CriuOptions } from "../../../gen/criu/gateway/v1/gateway.js";
import { GatewayError, invalidArgument } from "../errors.js";
import type { Features } from "../operations/probes.js";

export type MigrationMode = "stop-and-copy" | "post-copy" | "pre-copy";

/** The default: the only mode in which the process never depends on two hosts at once. */
export const DEFAULT_MIGRATION_MODE: MigrationMode = "stop-and-copy";

/**
 * CRIU's page server grows its pipes to about 3.2 MiB; without CAP_SYS_RESOURCE the kernel caps
 * a pipe at fs.pipe-max-size and the page server dies with `page-pipe: tee: 65536`.
 */
export const PIPE_MAX_SIZE_NEEDED = 4 * 1024 * 1024;
const PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size";
const CAP_SYS_RESOURCE = 24n;

/** Options the mode sets itself; a caller's value would break the mode's guarantees. */
const MODE_OWNED: readonly (keyof CriuOptions)[] = [
  "pid",
  "leaveRunning",
  "leaveStopped",
  "lazyPages",
  "ps",
  "trackMem",
];

/** INVALID_ARGUMENT when `options` sets a field the migration sets itself. */
export function refuseModeOwnedOptions(options: CriuOptions | undefined, field: string): void {
  if (!options) return;
  const set = MODE_OWNED.filter((name) => options[name] !== undefined);
  if (set.length > 0) {
    throw invalidArgument(
      `${field}: ${set.join(", ")} ${set.length === 1 ? "is" : "are"} set by the migration itself; leave ${set.length === 1 ? "it" : "them"} unset`,
    );
  }
}

/** What the host offers that the modes depend on; read from the kernel unless a test says. */
export interface HostLimits {
  pipeMaxSize(): Promise<number>;
  hasCapSysResource(): Promise<boolean>;
}

export const kernelLimits: HostLimits = {
  pipeMaxSize: async () => Number((await fs.readFile(PIPE_MAX_SIZE, "utf8")).trim()),
  hasCapSysResource: async () => {
    const status = await fs.readFile("/proc/self/status", "utf8");
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0";
    return ((BigInt(`0x${hex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
  },
};

/** FAILED_PRECONDITION when this host cannot migrate in `mode`; nothing has been touched yet. */
export async function checkModePossible(
  mode: MigrationMode,
  features: () => Promise<Features>,
  host: HostLimits,
): Promise<void> {
  if (mode === "pre-copy") {
    if (!(await features()).memTrack) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        "PRE_COPY needs dirty-memory tracking (soft-dirty bits; FeatureCheck.mem_track), which this host's kernel does not offer; use POST_COPY for a short freeze or STOP_AND_COPY",
      );
    }
    return;
  }
  if (mode !== "post-copy") return;
  if (!(await features()).lazyPages) {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      "POST_COPY needs userfaultfd (FeatureCheck.lazy_pages), which this host's kernel does not offer; use STOP_AND_COPY",
    );
  }
  const size = await host.pipeMaxSize();
  if (size < PIPE_MAX_SIZE_NEEDED && !(await host.hasCapSysResource())) {
    throw new GatewayError(
      "FAILED_PRECONDITION",
      `POST_COPY needs /proc/sys/fs/pipe-max-size of at least ${PIPE_MAX_SIZE_NEEDED} (it is ${size}): CRIU's page server grows its pipes to about 3.2 MiB and, without CAP_SYS_RESOURCE, fails beyond that limit. Raise it (sysctl fs.pipe-max-size=${PIPE_MAX_SIZE_NEEDED}) or use STOP_AND_COPY`,
    );
  }
}
