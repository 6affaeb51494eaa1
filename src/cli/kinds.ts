// The names the command line uses for the API's enums, mapped to the enums' value names. Only
// types come from the generated code, so the command table can use these without loading it.
import type { CheckpointKind, CheckpointLogKind, OperationKind } from "../../gen/criu/gateway/v1/gateway.js";

/** `watch --kind`: every operation kind (a test checks none is missing). */
export const OPERATION_KINDS = {
  dump: "OPERATION_KIND_DUMP",
  restore: "OPERATION_KIND_RESTORE",
  check: "OPERATION_KIND_CHECK",
  "feature-check": "OPERATION_KIND_FEATURE_CHECK",
  version: "OPERATION_KIND_VERSION",
  "pre-dump": "OPERATION_KIND_PRE_DUMP",
  "wait-pid": "OPERATION_KIND_WAIT_PID",
  "cpuinfo-dump": "OPERATION_KIND_CPUINFO_DUMP",
  "cpuinfo-check": "OPERATION_KIND_CPUINFO_CHECK",
  "page-server": "OPERATION_KIND_PAGE_SERVER",
  "iterative-dump": "OPERATION_KIND_ITERATIVE_DUMP",
} as const satisfies Record<string, keyof typeof OperationKind>;

/** `log --kind`: the operations whose log a checkpoint keeps. */
export const LOG_KINDS = {
  dump: "CHECKPOINT_LOG_KIND_DUMP",
  restore: "CHECKPOINT_LOG_KIND_RESTORE",
  "pre-dump": "CHECKPOINT_LOG_KIND_PRE_DUMP",
  "cpuinfo-dump": "CHECKPOINT_LOG_KIND_CPUINFO_DUMP",
  "cpuinfo-check": "CHECKPOINT_LOG_KIND_CPUINFO_CHECK",
  "page-server": "CHECKPOINT_LOG_KIND_PAGE_SERVER",
} as const satisfies Record<string, keyof typeof CheckpointLogKind>;

/** The KIND column of `ls`. */
export const CHECKPOINT_KINDS = {
  CHECKPOINT_KIND_DUMP: "dump",
  CHECKPOINT_KIND_PRE_DUMP: "pre-dump",
  CHECKPOINT_KIND_CPUINFO: "cpuinfo",
  CHECKPOINT_KIND_PAGES: "pages",
} as const satisfies Partial<Record<keyof typeof CheckpointKind, string>>;

/** The command-line name of an enum value, by the value's name. */
export function cliName(names: Readonly<Record<string, string>>, valueName: string): string | undefined {
  return Object.keys(names).find((k) => names[k] === valueName);
}
