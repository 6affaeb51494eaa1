// Restoring a checkpoint.
import { defineCommand } from "../command.js";
import { CONNECTION, CRIU_LOG_LEVEL, JSON_OUTPUT, TREE_RESOURCES } from "../options.js";

export const RESTORE_OPTIONS = {
  ...TREE_RESOURCES,
  ...CRIU_LOG_LEVEL,
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;

export const restore = defineCommand({
  name: "restore",
  section: "client",
  summary: "restore checkpoint ID; prints the restored pid",
  args: [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }],
  options: RESTORE_OPTIONS,
  run: async (args) => (await import("../handlers/restore.js")).restore(args),
});
