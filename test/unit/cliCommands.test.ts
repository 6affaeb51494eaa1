// The command table and what is written from it: parsing against each command's own options,
// the help text, and the enum names the command line accepts.
import { describe, expect, test } from "vitest";
import { CheckpointLogKind, OperationKind } from "../../gen/criu/gateway/v1/gateway.js";
import { UsageError } from "../../src/cli/command.js";
import { COMMANDS, findCommand } from "../../src/cli/commandTable.js";
import { LOG_KINDS, OPERATION_KINDS } from "../../src/cli/kinds.js";
import { parseCommandLine } from "../../src/cli/parse.js";
import { commandUsage, overview, usageOf } from "../../src/cli/usage.js";

function command(name: string) {
  const found = COMMANDS.find((c) => c.name === name);
  if (!found) throw new Error(`no command ${name}`);
  return found;
}

function parseError(name: string, argv: string[]): string {
  try {
    parseCommandLine(command(name), argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`${name} ${argv.join(" ")} parsed`);
}

describe("the names the command line gives the API's enums", () => {
  test("watch --kind accepts every operation kind, and its help lists them all", () => {
    const named = Object.values(OPERATION_KINDS) as string[];
    const kinds = Object.keys(OperationKind).filter(
      (k) => Number.isNaN(Number(k)) && k !== "OPERATION_KIND_UNSPECIFIED" && k !== "UNRECOGNIZED",
    );
    expect(named.sort()).toEqual(kinds.sort());
    const help = commandUsage(command("watch")).replace(/\s+/g, " ");
    for (const name of Object.keys(OPERATION_KINDS)) expect(help).toContain(name);
  });

  test("log --kind accepts every log kind", () => {
    const kinds = Object.keys(CheckpointLogKind).filter(
      (k) => Number.isNaN(Number(k)) && k !== "CHECKPOINT_LOG_KIND_UNSPECIFIED" && k !== "UNRECOGNIZED",
    );
    expect((Object.values(LOG_KINDS) as string[]).sort()).toEqual(kinds.sort());
  });
});

describe("parsing a command line against the command's own options", () => {
  test("typed values and positionals", () => {
    const { values, positionals } = parseCommandLine(command("watch"), [
      "--kind",
      "dump",
      "--kind",
      "restore",
    ]);
    expect(values.kind).toEqual(["dump", "restore"]);
    expect(positionals).toEqual([]);
    expect(parseCommandLine(command("restore"), ["demo", "--shell-job"]).values["shell-job"]).toBe(true);
    expect(parseCommandLine(command("ls"), ["-q"]).values.quiet).toBe(true);
  });

  test("an option of another command is refused by name", () => {
    expect(parseError("restore", ["demo", "--leave-running"])).toBe("restore has no option --leave-running");
    expect(parseError("version", ["--pid", "1"])).toBe("version has no option --pid");
  });

  test("missing required options and arguments, extra arguments and values outside the choices", () => {
    expect(parseError("dump", ["--id", "x"])).toBe("dump needs --pid N");
    expect(parseError("restore", [])).toBe("restore needs a checkpoint id");
    expect(parseError("rm", ["a", "b"])).toBe('rm takes ID, not "b" too');
    expect(parseError("watch", ["--kind", "nonsense"])).toMatch(
      /^--kind nonsense: use one of dump, restore,/,
    );
    expect(parseError("completion", ["zsh"])).toBe("completion zsh: use one of bash");
    expect(parseError("dump", ["--pid"])).toMatch(/^dump: Option '--pid <value>' argument missing/);
  });

  test("a group's subcommand is found by its two words", () => {
    expect(findCommand(["page-server", "start", "x"]).command?.name).toBe("page-server start");
    expect(findCommand(["page-server", "start", "x"]).rest).toEqual(["x"]);
    expect(findCommand(["page-server"]).command).toBeUndefined();
  });
});

describe("help written from the table", () => {
  test("the overview names every command; each command's usage names each of its options", () => {
    const all = overview(COMMANDS);
    for (const c of COMMANDS) {
      expect(all).toContain(`  ${c.name}`);
      const usage = commandUsage(c);
      for (const name of Object.keys(c.options)) expect(usage).toContain(`--${name}`);
    }
  });

  test("required options are in the synopsis", () => {
    expect(commandUsage(command("dump"))).toMatch(/^Usage: criu-gateway dump --pid N --id ID \[options\]\n/);
    expect(overview(COMMANDS)).toMatch(/\n {2}copy-images ID --to ADDR +copy/);
  });

  test("a group's help is the usage of each of its subcommands", () => {
    const usage = usageOf("page-server", COMMANDS) ?? "";
    expect(usage.match(/^Usage: criu-gateway page-server \w+/gm)).toEqual([
      "Usage: criu-gateway page-server start",
      "Usage: criu-gateway page-server stop",
      "Usage: criu-gateway page-server ls",
    ]);
    expect(usageOf("nonsense", COMMANDS)).toBeUndefined();
  });
});
