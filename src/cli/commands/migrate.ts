// Moving a running process tree to another gateway's host.
import { defineCommand } from "../command.js";
import { CONNECTION, CRIU_LOG_LEVEL, JSON_OUTPUT, TREE_RESOURCES } from "../options.js";

export const MIGRATE_OPTIONS = {
  pid: { type: "string", value: "N", required: true, help: "the root of the process tree to move" },
  to: {
    type: "string",
    value: "ADDR",
    required: true,
    help: "the target gateway, as the source gateway's --push-target lists it",
  },
  mode: {
    type: "string",
    value: "MODE",
    choices: ["stop-and-copy", "post-copy", "pre-copy"],
    help: "how to move it (default stop-and-copy: the process never depends on two hosts)",
  },
  id: { type: "string", value: "ID", help: "the checkpoint id used while the images travel" },
  ...TREE_RESOURCES,
  ...CRIU_LOG_LEVEL,
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;

export const migrate = defineCommand({
  name: "migrate",
  section: "client",
  summary: "move the running process tree rooted at N to the gateway at ADDR",
  details: `The gateway given with --addr is the source: it dumps the tree, connects to ADDR with its own
identity and has the tree restored there. Should anything fail before the tree runs there, it
runs on here, untouched. Prints the pid on the target.`,
  options: MIGRATE_OPTIONS,
  run: async (args) => (await import("../handlers/migrate.js")).migrate(args),
});
