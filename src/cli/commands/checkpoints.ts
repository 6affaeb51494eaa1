// The gateway's checkpoints: list, show, delete, and read CRIU's logs.
import { defineCommand } from "../command.js";
import { CONNECTION, JSON_OUTPUT, LOG_KIND_NAMES } from "../options.js";

const CHECKPOINT_ID = [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }] as const;

export const LS_OPTIONS = {
  quiet: { type: "boolean", short: "q", help: "print only the checkpoint ids, one a line" },
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;
export const CHECKPOINT_OPTIONS = { ...JSON_OUTPUT, ...CONNECTION } as const;
export const LOG_OPTIONS = {
  kind: {
    type: "string",
    value: "KIND",
    choices: LOG_KIND_NAMES,
    help: "the log of this operation (default: of the operation that made the checkpoint)",
  },
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;

export const ls = defineCommand({
  name: "ls",
  section: "client",
  summary: "list checkpoints",
  options: LS_OPTIONS,
  run: async (args) => (await import("../handlers/checkpoints.js")).ls(args),
});

export const get = defineCommand({
  name: "get",
  section: "client",
  summary: "show one checkpoint",
  args: CHECKPOINT_ID,
  options: CHECKPOINT_OPTIONS,
  run: async (args) => (await import("../handlers/checkpoints.js")).get(args),
});

export const rm = defineCommand({
  name: "rm",
  section: "client",
  summary: "delete a checkpoint",
  args: CHECKPOINT_ID,
  options: CHECKPOINT_OPTIONS,
  run: async (args) => (await import("../handlers/checkpoints.js")).rm(args),
});

export const log = defineCommand({
  name: "log",
  section: "client",
  summary: "print CRIU's log of checkpoint ID",
  args: CHECKPOINT_ID,
  options: LOG_OPTIONS,
  run: async (args) => (await import("../handlers/checkpoints.js")).log(args),
});
