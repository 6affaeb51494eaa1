// Help for people and completion for their shell, both written from the command table.
import { defineCommand } from "../command.js";

export const help = defineCommand({
  name: "help",
  section: "shell",
  summary: "list the commands, or describe one with its options",
  args: [
    { name: "COMMAND", what: "a command", optional: true, complete: "command" },
    { name: "SUBCOMMAND", what: "a subcommand", optional: true },
  ],
  options: {},
  run: async (args) => (await import("../handlers/shell.js")).help(args),
});

export const completion = defineCommand({
  name: "completion",
  section: "shell",
  summary: 'print a completion script: eval "$(criu-gateway completion bash)"',
  args: [{ name: "bash", what: "the shell (bash)", choices: ["bash"] }],
  options: {},
  run: async (args) => (await import("../handlers/shell.js")).completion(args),
});
