// Checkpointing a running process tree: a dump, or a pre-dump that leaves it running.
import { defineCommand } from "../command.js";
import { CONNECTION, CRIU_LOG_LEVEL, JSON_OUTPUT, TREE_RESOURCES } from "../options.js";

const TARGET = {
  pid: { type: "string", value: "N", required: true, help: "the root of the process tree" },
  id: { type: "string", value: "ID", required: true, help: "the checkpoint to write" },
  parent: { type: "string", value: "ID", complete: "checkpoint", help: "a pre-dump this one builds on" },
  durability: {
    type: "string",
    value: "HOW",
    choices: ["fsync", "none"],
    help: "fsync (default): answer once on disk; none: once in place, which a machine crash may lose",
  },
} as const;

export const DUMP_OPTIONS = {
  ...TARGET,
  "leave-running": { type: "boolean", help: "keep the tree running after the dump" },
  ...TREE_RESOURCES,
  "link-remap": { type: "boolean", help: "allow linked-remap files for unlinked open files" },
  "track-mem": { type: "boolean", help: "track memory changes, for a later pre-dump or dump" },
  ...CRIU_LOG_LEVEL,
  "page-server": {
    type: "string",
    value: "IP:PORT",
    help: "send the memory to this page server instead of the checkpoint",
  },
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;

export const PRE_DUMP_OPTIONS = { ...TARGET, ...CRIU_LOG_LEVEL, ...JSON_OUTPUT, ...CONNECTION } as const;

export const dump = defineCommand({
  name: "dump",
  section: "client",
  summary: "checkpoint the process tree rooted at N as checkpoint ID",
  details: "With --page-server its memory goes to a page server (see page-server start).",
  options: DUMP_OPTIONS,
  run: async (args) => (await import("../handlers/dump.js")).dump(args),
});

export const preDump = defineCommand({
  name: "pre-dump",
  section: "client",
  summary: "copy the memory of a tree that keeps running, for a later --parent",
  options: PRE_DUMP_OPTIONS,
  run: async (args) => (await import("../handlers/dump.js")).preDump(args),
});
