// Recording a host's CPU and checking another host against it, before a migration.
import { defineCommand } from "../command.js";
import { CONNECTION, CRIU_LOG_LEVEL, JSON_OUTPUT } from "../options.js";

export const CPUINFO_OPTIONS = { ...CRIU_LOG_LEVEL, ...JSON_OUTPUT, ...CONNECTION } as const;

export const cpuinfoDump = defineCommand({
  name: "cpuinfo-dump",
  section: "client",
  summary: "record this host's CPU description as checkpoint ID",
  args: [{ name: "ID", what: "a checkpoint id" }],
  options: CPUINFO_OPTIONS,
  run: async (args) => (await import("../handlers/cpuinfo.js")).cpuinfoDump(args),
});

export const cpuinfoCheck = defineCommand({
  name: "cpuinfo-check",
  section: "client",
  summary: "check this host's CPU against the description in checkpoint ID",
  args: [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }],
  options: CPUINFO_OPTIONS,
  run: async (args) => (await import("../handlers/cpuinfo.js")).cpuinfoCheck(args),
});
