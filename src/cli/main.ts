// The criu-gateway command: finds the command in the table, parses its own options, runs its
// handler, and turns what went wrong into a message and an exit status (2 for a usage mistake,
// 1 for a failed call). `serve` runs the gateway; the other commands call a running one.
import { ConfigError } from "../config.js";
import { type Command, CommandError, UsageError } from "./command.js";
import { COMMANDS, findCommand, subcommandsOf } from "./commandTable.js";
import { parseCommandLine } from "./parse.js";
import { commandUsage, overview, usageOf } from "./usage.js";

export async function main(argv: string[]): Promise<number> {
  const { command, rest } = findCommand(argv);
  if (isHelp(argv[0])) return write(process.stdout, overview(COMMANDS), 0);
  if (!command) {
    const groupUsage = isHelp(argv[1]) && argv[0] !== undefined ? usageOf(argv[0], COMMANDS) : undefined;
    if (groupUsage) return write(process.stdout, groupUsage, 0);
    return write(process.stderr, `criu-gateway: ${unknown(argv)}\n\n${overview(COMMANDS)}`, 2);
  }
  if (rest.some(isHelp)) return write(process.stdout, commandUsage(command), 0);
  try {
    return await command.run(parseCommandLine(command, rest));
  } catch (err) {
    return report(command, err);
  }
}

function isHelp(word: string | undefined): boolean {
  return word === "--help" || word === "-h";
}

function unknown(argv: readonly string[]): string {
  const [first, second] = argv;
  if (first === undefined) return "no command given";
  const subcommands = subcommandsOf(first);
  if (subcommands.length === 0) return `unknown command ${JSON.stringify(first)}`;
  return `${first} takes ${subcommands.join(", ")}${second === undefined ? "" : `, not ${JSON.stringify(second)}`}`;
}

async function report(command: Command, err: unknown): Promise<number> {
  if (err instanceof UsageError || err instanceof ConfigError) {
    return write(process.stderr, `criu-gateway: ${(err as Error).message}\n\n${commandUsage(command)}`, 2);
  }
  if (err instanceof CommandError)
    return write(process.stderr, `criu-gateway: ${err.message}\n`, err.exitCode);
  if (isServiceError(err)) {
    const { describeServiceError } = await import("./serviceError.js");
    return write(process.stderr, `criu-gateway: ${describeServiceError(err)}\n`, 1);
  }
  return write(process.stderr, `criu-gateway: ${(err as Error)?.message ?? String(err)}\n`, 1);
}

/** A failed call, recognised without loading grpc-js. */
function isServiceError(err: unknown): err is import("@grpc/grpc-js").ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err && "metadata" in err;
}

function write(stream: NodeJS.WriteStream, text: string, code: number): number {
  stream.write(text);
  return code;
}
