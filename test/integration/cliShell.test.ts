// The criu-gateway command in a person's shell: bash completion sourced into a real bash, the
// progress line on a real terminal (a pty from `script`) and its absence on a pipe, and the
// modules a client command loads, recorded by a module-resolution hook.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { OPERATION_KINDS } from "../../src/cli/kinds.js";
import { bin, type CliGateway, run, startCliGateway } from "../support/cliGateway.js";
import { startCounter } from "../support/workload.js";

let gateway: CliGateway;
let dir: string;
let socket: string;
const cli = (...args: string[]) => gateway.cli(...args);

beforeAll(async () => {
  gateway = await startCliGateway("criu-gw-clishell-");
  ({ dir, socket } = gateway);
});

afterAll(async () => {
  await gateway.stop();
});

describe("bash completion", () => {
  /** Sources the script in a real bash, completes `words` (the last one being typed), prints COMPREPLY. */
  async function complete(...words: string[]): Promise<string[]> {
    // The script runs COMP_WORDS[0] for checkpoint ids: a criu-gateway on PATH, as installed.
    const script = [
      'eval "$(criu-gateway completion bash)"',
      "complete -p criu-gateway >/dev/null || exit 3",
      'COMP_WORDS=("$@")',
      "COMP_CWORD=$(($# - 1))",
      "_criu_gateway",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash expansion, not a template
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join("\n");
    const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` };
    const r = await run("bash", ["-c", script, "bash", "criu-gateway", ...words], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    return r.stdout.split("\n").filter((l) => l !== "");
  }

  beforeAll(async () => {
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin", "criu-gateway"), `#!/bin/sh\nexec node ${bin} "$@"\n`);
    chmodSync(join(dir, "bin", "criu-gateway"), 0o755);
  });

  test("commands, a group's subcommands, and each command's own options", async () => {
    expect(await complete("wa")).toEqual(["watch"]);
    expect(await complete("page-server", "")).toEqual(["start", "stop", "ls"]);
    expect(await complete("dump", "--le")).toEqual(["--leave-running"]);
    expect(await complete("restore", "demo", "--le")).toEqual([]);
    expect(await complete("ls", "--")).toContain("--quiet");
  });

  test("an option's choices, after other options and their values", async () => {
    const kinds = await complete("watch", "--pid", "1", "--kind", "");
    expect(kinds.sort()).toEqual(Object.keys(OPERATION_KINDS).sort());
    expect(await complete("log", "x", "--kind", "cpu")).toEqual(["cpuinfo-dump", "cpuinfo-check"]);
    expect(await complete("help", "page")).toEqual(["page-server"]);
  });

  test("checkpoint ids from the gateway named on the command line", async () => {
    expect((await cli("cpuinfo-dump", "cpu-one")).code).toBe(0);
    expect((await cli("cpuinfo-dump", "cpu-two")).code).toBe(0);
    const addr = ["--addr", `unix:${socket}`];
    expect((await complete("restore", ...addr, "cpu-")).sort()).toEqual(["cpu-one", "cpu-two"]);
    expect(await complete("rm", ...addr, "cpu-t")).toEqual(["cpu-two"]);
    // Not where the command takes a new checkpoint's name.
    expect(await complete("cpuinfo-dump", ...addr, "cpu-")).toEqual([]);
  });
});

describe("progress of a dump", () => {
  test("drawn on a terminal and erased before the result; absent on a pipe and with --json", async () => {
    // A few hundred MiB of memory, so the dump takes a moment.
    const c = await startCounter(dir, "big", { setup: "big = bytearray(256 * 1024 * 1024)" });
    try {
      const dump = (id: string, extra = "") =>
        `node ${bin} dump --pid ${c.pid} --id ${id} --leave-running --addr unix:${socket} ${extra}`;
      // `script` runs the command on a pty of its own and copies what it writes to our stdout.
      const onTerminal = await run("script", ["-qec", dump("on-tty"), "/dev/null"]);
      expect(onTerminal.code).toBe(0);
      expect(onTerminal.stdout).toContain(`\r\x1b[2K|  dumping pid ${c.pid} as on-tty  0.`);
      // The result comes right after the last erase: no progress left on its line.
      const afterErase = onTerminal.stdout.slice(onTerminal.stdout.lastIndexOf("\x1b[2K") + 4);
      expect(afterErase).toMatch(/^\r?checkpoint on-tty written \(/);

      const onPipe = await cli("dump", "--pid", String(c.pid), "--id", "on-pipe", "--leave-running");
      expect(onPipe.code).toBe(0);
      expect(onPipe.stdout).toMatch(/^checkpoint on-pipe written \([^\n]*\)\n$/);

      const json = await run("script", ["-qec", dump("as-json", "--json"), "/dev/null"]);
      expect(json.code).toBe(0);
      expect(json.stdout).not.toContain("\x1b");
      expect(json.stdout).toContain('"checkpointId": "as-json"');
    } finally {
      c.kill();
      await c.exited;
    }
  });
});

describe("what a command loads", () => {
  /** The modules `args` resolves, recorded by a resolve hook (node:module register) into a file. */
  async function loaded(...args: string[]): Promise<string[]> {
    const log = join(dir, `loaded-${args[0]}.txt`);
    writeFileSync(
      join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + "\\n");
  return result;
}
`,
    );
    writeFileSync(
      join(dir, "record.mjs"),
      `import { register } from "node:module";
register(${JSON.stringify(join(dir, "hooks.mjs"))}, import.meta.url, { data: { log: ${JSON.stringify(log)} } });
`,
    );
    const r = await run("node", ["--import", join(dir, "record.mjs"), bin, ...args]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    return readFileSync(log, "utf8").trim().split("\n");
  }

  const SERVER_SIDE = [
    /\/dist\/src\/grpc\//,
    /\/dist\/src\/domain\//,
    /\/dist\/src\/criu\//,
    /\/dist\/gen\/grpc\//,
    /\/dist\/gen\/criu\/rpc\.js$/,
    /@grpc\/proto-loader/,
    /protobufjs/,
    /grpc-health-check/,
  ];

  test("version loads grpc-js and the gateway's generated client, and nothing of the server", async () => {
    const urls = await loaded("version", "--addr", `unix:${socket}`);
    expect(urls).toContainEqual(expect.stringMatching(/\/dist\/src\/cli\/handlers\/probes\.js$/));
    expect(urls).toContainEqual(expect.stringMatching(/\/dist\/gen\/criu\/gateway\/v1\/gateway\.js$/));
    expect(urls).toContainEqual(expect.stringMatching(/@grpc\/grpc-js/));
    for (const pattern of SERVER_SIDE) expect(urls.filter((u) => pattern.test(u))).toEqual([]);
    // Nor the handlers of other commands.
    expect(urls.filter((u) => /\/handlers\/(?!probes\.js)/.test(u))).toEqual([]);
  });

  test("help and completion load neither grpc-js nor any generated code", async () => {
    for (const args of [["help"], ["completion", "bash"]]) {
      const urls = await loaded(...args);
      expect(urls).toContainEqual(expect.stringMatching(/\/dist\/src\/cli\/main\.js$/));
      expect(urls.filter((u) => /@grpc|\/dist\/gen\//.test(u))).toEqual([]);
    }
  });
});
