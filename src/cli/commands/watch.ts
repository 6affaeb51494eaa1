// Following the gateway's operations live.
import { defineCommand } from "../command.js";
import { CONNECTION, OPERATION_KIND_NAMES } from "../options.js";

export const WATCH_OPTIONS = {
  kind: {
    type: "string",
    multiple: true,
    value: "KIND",
    choices: OPERATION_KIND_NAMES,
    help: "only operations of this kind",
  },
  pid: { type: "string", value: "N", help: "only operations on this pid" },
  id: { type: "string", value: "ID", complete: "checkpoint", help: "only operations on this checkpoint" },
  json: { type: "boolean", help: "print each event as one line of proto3 JSON" },
  ...CONNECTION,
} as const;

export const watch = defineCommand({
  name: "watch",
  section: "client",
  summary: "follow every operation's events live (Ctrl-C to stop)",
  options: WATCH_OPTIONS,
  run: async (args) => (await import("../handlers/watch.js")).watch(args),
});
