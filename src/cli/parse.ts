// The command line of one command, parsed with node:util's parseArgs against that command's own
// declaration: an option another command takes is an error here, said in the command's terms.
import { parseArgs } from "node:util";
import { type Args, type Command, type OptionSpec, UsageError } from "./command.js";

type ParseArgsOptions = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

export function parseCommandLine(command: Command, argv: readonly string[]): Args<Command["options"]> {
  const options: ParseArgsOptions = {};
  for (const [name, spec] of Object.entries(command.options)) {
    // parseArgs refuses keys present with the value undefined.
    options[name] = {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  refuseUnknownOptions(command, argv, options);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${command.name}: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  for (const [name, spec] of Object.entries(command.options)) {
    checkOption(command, name, spec, values[name]);
  }
  checkPositionals(command, positionals);
  return { values: values as Args<Command["options"]>["values"], positionals };
}

/** parseArgs' own message for an unknown option is about positionals; this one names the command. */
function refuseUnknownOptions(command: Command, argv: readonly string[], options: ParseArgsOptions): void {
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const unknown = tokens.find((t) => t.kind === "option" && !(t.name in command.options));
  if (unknown?.kind !== "option") return;
  // The command's usage, printed after the message, lists the options it does take.
  throw new UsageError(`${command.name} has no option ${unknown.rawName}`);
}

function checkOption(command: Command, name: string, spec: OptionSpec, value: unknown): void {
  if (value === undefined) {
    if (spec.required) throw new UsageError(`${command.name} needs --${name} ${spec.value ?? ""}`.trimEnd());
    return;
  }
  if (!spec.choices) return;
  for (const v of Array.isArray(value) ? value : [value]) {
    if (!spec.choices.includes(v as string)) {
      throw new UsageError(`--${name} ${v}: use one of ${spec.choices.join(", ")}`);
    }
  }
}

function checkPositionals(command: Command, positionals: readonly string[]): void {
  const declared = command.args ?? [];
  const missing = declared.find((a, i) => !a.optional && positionals[i] === undefined);
  if (missing) throw new UsageError(`${command.name} needs ${missing.what}`);
  if (positionals.length > declared.length) {
    throw new UsageError(
      `${command.name} takes ${declared.length === 0 ? "no arguments" : declared.map((a) => a.name).join(" ")}, not ${JSON.stringify(positionals.slice(declared.length).join(" "))} too`,
    );
  }
  declared.forEach((a, i) => {
    const v = positionals[i];
    if (v !== undefined && a.choices && !a.choices.includes(v)) {
      throw new UsageError(`${command.name} ${v}: use one of ${a.choices.join(", ")}`);
    }
  });
}

/** A whole number from an option's text. */
export function integer(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n)) {
    throw new UsageError(`${flag} needs a whole number, not ${JSON.stringify(text)}`);
  }
  return n;
}

/** A whole number from an option that may be absent. */
export function optionalInteger(flag: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : integer(flag, text);
}
