// The help text, written from the command table: what `help` and a usage mistake print.
import type { Command, OptionSpec } from "./command.js";

const SECTIONS: Record<Command["section"], string> = {
  server: "Run the gateway:",
  client: "Call a running gateway (--addr ADDR, --tls-*, --json; `help COMMAND` lists a command's options):",
  shell: "Shell:",
};

/** `criu-gateway help`: every command with its one-line summary. */
export function overview(commands: readonly Command[]): string {
  const lines = ["Usage: criu-gateway <command> [arguments] [options]", "       criu-gateway help <command>"];
  const width = Math.max(...commands.map((c) => synopsis(c).length)) + 2;
  for (const [section, title] of Object.entries(SECTIONS)) {
    lines.push("", title);
    for (const c of commands.filter((c) => c.section === section)) {
      lines.push(`  ${synopsis(c).padEnd(width)}${c.summary}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The usage of a command, or of every subcommand of a group ("page-server"); undefined for neither. */
export function usageOf(name: string, commands: readonly Command[]): string | undefined {
  const matching = commands.filter((c) => c.name === name || c.name.startsWith(`${name} `));
  return matching.length === 0 ? undefined : matching.map(commandUsage).join("\n");
}

/** `criu-gateway help COMMAND`: its synopsis, what it does, and each of its options. */
export function commandUsage(command: Command): string {
  const optional = Object.values(command.options).some((o) => !o.required);
  const head = [`criu-gateway ${synopsis(command)}`, ...(optional ? ["[options]"] : [])];
  const lines = [`Usage: ${head.join(" ")}`, "", command.summary];
  if (command.details) lines.push("", command.details);
  const rows = Object.entries(command.options).map(([name, o]) => [optionSynopsis(name, o), describe(o)]);
  if (rows.length > 0) {
    const width = Math.max(...rows.map(([s]) => s!.length)) + 2;
    lines.push("", "Options:", ...rows.map(([s, d]) => `  ${s!.padEnd(width)}${wrap(d!, width + 2)}`));
  }
  return `${lines.join("\n")}\n`;
}

/** The command, its arguments and its required options: `dump --pid N --id ID`. */
function synopsis(command: Command): string {
  const args = (command.args ?? []).map((a) => (a.optional ? `[${a.name}]` : a.name));
  const required = Object.entries(command.options)
    .filter(([, o]) => o.required)
    .map(([name, o]) => optionSynopsis(name, o));
  return [command.name, ...args, ...required].join(" ");
}

function optionSynopsis(name: string, o: OptionSpec): string {
  const short = o.short ? `-${o.short}, ` : "";
  return `${short}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
}

function describe(o: OptionSpec): string {
  const notes = [
    o.choices ? `one of ${o.choices.join(", ")}` : "",
    o.multiple ? "repeatable" : "",
    o.required ? "required" : "",
  ].filter(Boolean);
  return notes.length > 0 ? `${o.help} (${notes.join("; ")})` : o.help;
}

const LINE_WIDTH = 100;

/** Breaks a description at spaces so it stays in its column on an ordinary terminal. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent + line.length + 1 + word.length > LINE_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}
