// help and completion: both read the command table.
import { type Args, UsageError } from "../command.js";
import { COMMANDS } from "../commandTable.js";
import { bashCompletion } from "../completion.js";
import { overview, usageOf } from "../usage.js";

export async function help({ positionals }: Args<Record<string, never>>): Promise<number> {
  const name = positionals.length === 0 ? undefined : positionals.join(" ");
  if (name === undefined) {
    process.stdout.write(overview(COMMANDS));
    return 0;
  }
  const usage = usageOf(name, COMMANDS);
  if (usage === undefined) throw new UsageError(`help: no command ${JSON.stringify(name)}`);
  process.stdout.write(usage);
  return 0;
}

export async function completion(_args: Args<Record<string, never>>): Promise<number> {
  process.stdout.write(bashCompletion(COMMANDS));
  return 0;
}
