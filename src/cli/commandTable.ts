// Every command of the criu-gateway tool, in the order `help` lists them. Loading this loads only
// the declarations: each handler imports what it needs when it runs.
import type { Command } from "./command.js";
import { get, log, ls, rm } from "./commands/checkpoints.js";
import { cpuinfoCheck, cpuinfoDump } from "./commands/cpuinfo.js";
import { dump, preDump } from "./commands/dump.js";
import { copyImages, pageServerLs, pageServerStart, pageServerStop } from "./commands/pageServer.js";
import { check, features, version } from "./commands/probes.js";
import { restore } from "./commands/restore.js";
import { doctor, policyCheck, serve } from "./commands/serve.js";
import { completion, help } from "./commands/shell.js";
import { watch } from "./commands/watch.js";

export const COMMANDS: readonly Command[] = [
  serve,
  policyCheck,
  doctor,
  version,
  check,
  features,
  dump,
  preDump,
  restore,
  log,
  cpuinfoDump,
  cpuinfoCheck,
  watch,
  pageServerStart,
  pageServerStop,
  pageServerLs,
  copyImages,
  ls,
  get,
  rm,
  help,
  completion,
];

/** The command `argv` starts with (one word, or a group and its subcommand), and the words after it. */
export function findCommand(argv: readonly string[]): { command?: Command; rest: readonly string[] } {
  const two = COMMANDS.find((c) => c.name === `${argv[0]} ${argv[1]}`);
  if (two) return { command: two, rest: argv.slice(2) };
  return { command: COMMANDS.find((c) => c.name === argv[0]), rest: argv.slice(1) };
}

/** The subcommands of a group such as page-server; empty when `name` is not a group. */
export function subcommandsOf(name: string): string[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${name} `)).map((c) => c.name.slice(name.length + 1));
}
