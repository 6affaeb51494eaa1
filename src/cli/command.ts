// What a command of the criu-gateway tool is: its name, its positional arguments, its own options
// and a handler. Usage text, `help`, argument parsing and shell completion are all derived from
// these declarations, so they cannot drift apart.

/** One `--option` of one command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  /** May be given more than once; the handler gets every value. */
  readonly multiple?: boolean;
  /** A one-letter alias (`-q`). */
  readonly short?: string;
  /** The value's placeholder in the usage text: `--pid N`. */
  readonly value?: string;
  readonly help: string;
  /** The command refuses to run without it. */
  readonly required?: boolean;
  /** The only values accepted; listed in the help and offered by completion. */
  readonly choices?: readonly string[];
  /** What completion offers for the value when there are no `choices`. */
  readonly complete?: "file" | "checkpoint";
}

export type Options = Readonly<Record<string, OptionSpec>>;

/** One positional argument. */
export interface ArgumentSpec {
  /** Its placeholder in the usage text: `ID`. */
  readonly name: string;
  /** What the error says is missing: "a checkpoint id". */
  readonly what: string;
  readonly optional?: boolean;
  readonly choices?: readonly string[];
  /** What completion offers: files, the gateway's checkpoints, or the tool's own commands. */
  readonly complete?: "file" | "checkpoint" | "command";
}

type ValueOf<S extends OptionSpec> = S["type"] extends "boolean"
  ? boolean
  : S["multiple"] extends true
    ? string[]
    : string;

/** The parsed options of a command, typed from its declaration: required ones are always there. */
export type Values<O extends Options> = {
  readonly [K in keyof O]: O[K]["required"] extends true ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

export interface Args<O extends Options> {
  readonly values: Values<O>;
  readonly positionals: readonly string[];
}

export interface CommandSpec<O extends Options> {
  /** One word, or two for a group's subcommand: "page-server start". */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** More lines for `help COMMAND`. */
  readonly details?: string;
  readonly args?: readonly ArgumentSpec[];
  readonly options: O;
  /** The section of the command list it appears in. */
  readonly section: "server" | "client" | "shell";
  /** Returns the exit status. Imports what it needs itself, so other commands never load it. */
  run(args: Args<O>): Promise<number>;
}

/** A command with its option types erased, as the table holds it. */
export type Command = CommandSpec<Options>;

/** Types the handler's arguments from the declared options. */
export function defineCommand<const O extends Options>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

/** A mistake on the command line: printed with the command's usage; exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A failure the command explains itself; printed without a stack trace. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
