// help and completion: both read the command table.
import { type Args, UsageError } from "../command.js";
import { COMMANDS, findCommand, subcommandsOf } from "../commandTable.js";
import { bashCompletion } from "../completion.js";
import { commandUsage, overview } from "../usage.js";

export async function help({ positionals }: Args<Record<string, never>>): Promise<number> {
  const name = positionals.length === 0 ? undefined : positionals.join(" ");
  if (name === undefined) {
    process.stdout.write(overview(COMMANDS));
    return 0;
  }
  const { command } = findCommand(name.split(" "));
  const group = COMMANDS.filter((c) => subcommandsOf(name).some((s) => c.name === `${name} ${s}`));
  if (command) process.stdout.write(commandUsage(command));
  else if (group.length > 0) process.stdout.write(group.map(commandUsage).join("\n"));
  else throw new UsageError(`help: no command ${JSON.stringify(name)}`);
  return 0;
}

export async function completion(_args: Args<Record<string, never>>): Promise<number> {
  process.stdout.write(bashCompletion(COMMANDS));
  return 0;
}
