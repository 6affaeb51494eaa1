// docs/api-compliance.md says how a gRPC client reaches every CRIU request and option. These tests
// hold its tables to the protos, to OPTION_CLASSES and to the evidence tests, so the page cannot
// drift: a CRIU request type, criu_opts field or CriuService RPC without a row fails here, and so
// does a row naming an RPC or field that does not exist, or a class the gateway does not enforce.
import { readFileSync } from "node:fs";
import type { Root } from "protobufjs";
import protobuf from "protobufjs";
import { describe, expect, test } from "vitest";
import { OPTION_CLASSES } from "../../src/domain/criuOptions.js";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");
const docText = read("../../docs/api-compliance.md");
const gatewayText = read("../../proto/criu/gateway/v1/gateway.proto");
const rpcText = read("../../proto/criu/rpc.proto");
const evidenceText = read("../integration/optionsReceived.test.ts");

const REQUEST_STATUSES = ["yes", "planned", "internal", "no"];
const CLASSES = ["safe", "admin", "never", "reserved"];
const EVIDENCE = ["effect", "log", "rejected", "accepted", "refused", "none"];

interface Row {
  cells: string[];
  line: number;
}

/** The rows of the table under the heading `## <heading>`, header and separator left out. */
function tableRows(doc: string, heading: string, problems: string[]): Row[] {
  const lines = doc.split("\n");
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) {
    problems.push(`no section "## ${heading}"`);
    return [];
  }
  const rows: Row[] = [];
  let header = true;
  for (let i = start + 1; i < lines.length && !lines[i]!.startsWith("## "); i++) {
    const line = lines[i]!.trim();
    if (!line.startsWith("|")) {
      if (rows.length > 0 || !header) break;
      continue;
    }
    const cells = line
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
    if (header) {
      header = false;
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push({ cells, line: i + 1 });
  }
  if (rows.length === 0) problems.push(`section "## ${heading}" has no table rows`);
  return rows;
}

/** The `code` spans of a cell. */
function codes(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

/** "`DUMP` (1)" → ["DUMP", 1]. */
function keyOf(cell: string): [string, number] | undefined {
  const m = /^`(\w+)` \((\d+)\)$/.exec(cell);
  return m ? [m[1]!, Number(m[2])] : undefined;
}

function parse(text: string): Root {
  return protobuf.parse(text, { keepCase: true }).root;
}

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Whether the evidence tests name the option in a string (a test's title). */
function evidenceNames(evidence: string, option: string): boolean {
  return [...evidence.matchAll(/"([^"\n]*)"/g)].some((m) => new RegExp(`\\b${option}\\b`).test(m[1]!));
}

/** Every way the page falls short of the protos and the gateway; empty when none. */
function complianceProblems(doc: string, gateway: string, rpc: string, evidence: string): string[] {
  const problems: string[] = [];
  const gatewayRoot = parse(gateway);
  const criuRoot = parse(rpc);
  const service = gatewayRoot.lookupService("criu.gateway.v1.CriuService");
  const rpcs = new Set(Object.keys(service.methods));
  const options = gatewayRoot.lookupType("criu.gateway.v1.CriuOptions");
  const reservedNames = new Set((options.reserved ?? []).filter((r): r is string => typeof r === "string"));
  const reachable = new Set<string>();

  // A gRPC cell's RPC names, checked against the service by the row's status.
  const checkRpcs = (where: string, status: string, names: string[]) => {
    for (const name of names) {
      if (status === "yes") {
        if (rpcs.has(name)) reachable.add(name);
        else problems.push(`${where}: names ${name}, which CriuService does not have`);
      } else if (status === "planned") {
        if (rpcs.has(name)) problems.push(`${where}: ${name} is in CriuService now: mark the row yes`);
      } else {
        problems.push(`${where}: status ${status}, yet names ${name}`);
      }
    }
  };

  // Requests: one row per criu_req_type value.
  const reqTypes = criuRoot.lookupEnum("criu_req_type").values;
  const seenTypes = new Set<string>();
  for (const { cells, line } of tableRows(doc, "Requests", problems)) {
    const key = keyOf(cells[0] ?? "");
    const where = `line ${line}`;
    if (!key || cells.length !== 6) {
      problems.push(`${where}: a request row needs "\`TYPE\` (n)" and 6 cells`);
      continue;
    }
    const [name, number] = key;
    if (reqTypes[name] === undefined) problems.push(`${where}: criu_req_type has no ${name}`);
    else if (reqTypes[name] !== number)
      problems.push(`${where}: ${name} is ${reqTypes[name]}, not ${number}`);
    if (seenTypes.has(name)) problems.push(`${where}: a second row for ${name}`);
    seenTypes.add(name);
    const status = cells[4]!;
    if (!REQUEST_STATUSES.includes(status))
      problems.push(`${where}: status "${status}" is none of ${REQUEST_STATUSES}`);
    const named = codes(cells[3]!);
    if ((status === "yes" || status === "planned") && named.length === 0)
      problems.push(`${where}: ${name} is ${status}, yet its gRPC cell names no RPC`);
    if ((status === "internal" || status === "no") && !cells[5])
      problems.push(`${where}: ${name} says not why`);
    checkRpcs(`Requests, ${name}`, status, named);
  }
  for (const [name, number] of Object.entries(reqTypes)) {
    if (!seenTypes.has(name)) problems.push(`criu_req_type.${name} (${number}): no row in Requests`);
  }

  // Request fields: one row per criu_req field.
  const reqFields = criuRoot.lookupType("criu_req").fields;
  const seenReqFields = new Set<string>();
  for (const { cells, line } of tableRows(doc, "Request fields", problems)) {
    const key = keyOf(cells[0] ?? "");
    if (!key) {
      problems.push(`line ${line}: a request-field row needs "\`field\` (n)"`);
      continue;
    }
    const [name, number] = key;
    if (reqFields[name]?.id !== number)
      problems.push(`line ${line}: criu_req has no field ${name} = ${number}`);
    seenReqFields.add(name);
  }
  for (const field of Object.values(reqFields)) {
    if (!seenReqFields.has(field.name))
      problems.push(`criu_req.${field.name} (${field.id}): no row in Request fields`);
  }

  // RPCs beyond CRIU's requests.
  for (const { cells, line } of tableRows(doc, "RPCs beyond CRIU's requests", problems)) {
    const status = cells[1] ?? "";
    if (status !== "yes" && status !== "planned")
      problems.push(`line ${line}: status "${status}" is not yes or planned`);
    checkRpcs(`RPCs beyond CRIU's requests, ${cells[0]}`, status, codes(cells[0] ?? ""));
  }
  for (const name of rpcs) {
    if (!reachable.has(name))
      problems.push(`CriuService.${name}: in no row of Requests or RPCs beyond CRIU's requests`);
  }

  // Options: one row per criu_opts field.
  const criuOpts = criuRoot.lookupType("criu_opts").fields;
  const seenOptions = new Set<string>();
  const classes = OPTION_CLASSES as Record<string, string>;
  for (const { cells, line } of tableRows(doc, "Options", problems)) {
    const key = keyOf(cells[0] ?? "");
    if (!key || cells.length !== 7) {
      problems.push(`line ${line}: an option row needs "\`field\` (n)" and 7 cells`);
      continue;
    }
    const [name, number] = key;
    const [, , , grpc, cls, ev, notes] = cells as [string, string, string, string, string, string, string];
    if (criuOpts[name]?.id !== number) problems.push(`${name}: criu_opts has no field ${name} = ${number}`);
    if (seenOptions.has(name)) problems.push(`${name}: a second row`);
    seenOptions.add(name);

    const mirror = options.fields[name];
    const expectedClass = reservedNames.has(name) ? "reserved" : (classes[camel(name)] ?? "(unclassified)");
    if (!CLASSES.includes(cls)) problems.push(`${name}: class "${cls}" is none of ${CLASSES}`);
    else if (cls !== expectedClass) problems.push(`${name}: class ${cls}, the gateway's is ${expectedClass}`);

    const named = codes(grpc);
    if (mirror) {
      if (named.length !== 1 || named[0] !== name)
        problems.push(`${name}: the gRPC cell must name the CriuOptions field \`${name}\`, not ${grpc}`);
      else if (mirror.id !== number)
        problems.push(`${name}: CriuOptions.${name} is ${mirror.id}, not ${number}`);
    } else {
      for (const ref of named) {
        const [message, field] = ref.split(".");
        const type = (() => {
          try {
            return gatewayRoot.lookupType(`criu.gateway.v1.${message}`);
          } catch {
            return undefined;
          }
        })();
        if (!field || !type?.fields[field])
          problems.push(`${name}: names ${ref}, which gateway.proto does not have`);
      }
    }

    if (!EVIDENCE.includes(ev)) problems.push(`${name}: evidence "${ev}" is none of ${EVIDENCE}`);
    if (cls === "reserved" && ev !== "none") problems.push(`${name}: reserved, so its evidence is none`);
    if ((cls === "never") !== (ev === "refused"))
      problems.push(`${name}: a never option's evidence is refused, and only a never option's`);
    if (ev !== "none" && !evidenceNames(evidence, name))
      problems.push(`${name}: evidence ${ev}, yet no test of optionsReceived.test.ts names it`);
    if ((ev === "accepted" || ev === "none") && !notes)
      problems.push(`${name}: evidence ${ev} without a reason`);
  }
  for (const field of Object.values(criuOpts)) {
    if (!seenOptions.has(field.name))
      problems.push(`criu_opts.${field.name} (${field.id}): no row in Options`);
  }
  return problems;
}

// Replaces text that must occur exactly once, so a mutant never silently equals the original.
function mutate(text: string, from: string | RegExp, to: string): string {
  const count =
    typeof from === "string" ? text.split(from).length - 1 : (text.match(new RegExp(from, "g")) ?? []).length;
  if (count !== 1) throw new Error(`expected exactly one ${String(from)}, found ${count}`);
  return text.replace(from, to);
}

/** The page's row for a key, e.g. "`ghost_limit` (35)". */
function rowOf(key: string): string {
  const line = docText.split("\n").find((l) => l.startsWith(`| ${key} `));
  if (!line) throw new Error(`no row for ${key}`);
  return line;
}

describe("docs/api-compliance.md", () => {
  test("matches the protos, OPTION_CLASSES and the evidence tests", () => {
    expect(complianceProblems(docText, gatewayText, rpcText, evidenceText)).toEqual([]);
  });

  test("has a row for every criu_opts field and every request type", () => {
    const rows = (heading: string) => tableRows(docText, heading, []).length;
    expect(rows("Options")).toBe(parse(rpcText).lookupType("criu_opts").fieldsArray.length);
    expect(rows("Requests")).toBe(Object.keys(parse(rpcText).lookupEnum("criu_req_type").values).length);
  });
});

describe("the compliance check fails on", () => {
  const ghost = rowOf("`ghost_limit` (35)");
  const cases: [string, () => string[], string][] = [
    [
      "a missing option row",
      () => complianceProblems(mutate(docText, `${ghost}\n`, ""), gatewayText, rpcText, evidenceText),
      "criu_opts.ghost_limit (35): no row in Options",
    ],
    [
      "a wrong class",
      () =>
        complianceProblems(
          mutate(docText, ghost, ghost.replace("| safe ", "| admin ")),
          gatewayText,
          rpcText,
          evidenceText,
        ),
      "ghost_limit: class admin, the gateway's is safe",
    ],
    [
      "a misnamed CriuOptions field",
      () =>
        complianceProblems(
          mutate(docText, ghost, ghost.replace(/`ghost_limit`(\s+\|\s+safe)/, "`ghost_limits`$1")),
          gatewayText,
          rpcText,
          evidenceText,
        ),
      "ghost_limit: the gRPC cell must name the CriuOptions field `ghost_limit`, not `ghost_limits`",
    ],
    [
      "a reserved field called safe",
      () => {
        const row = rowOf("`status_fd` (49)");
        return complianceProblems(
          mutate(docText, row, row.replace("| reserved ", "| safe ")),
          gatewayText,
          rpcText,
          evidenceText,
        );
      },
      "status_fd: class safe, the gateway's is reserved",
    ],
    [
      "a reserved field pointing at a field gateway.proto lacks",
      () => {
        const row = rowOf("`parent_img` (14)");
        return complianceProblems(
          mutate(docText, row, row.replace("`DumpRequest.parent_checkpoint_id`", "`DumpRequest.parent_id`")),
          gatewayText,
          rpcText,
          evidenceText,
        );
      },
      "parent_img: names DumpRequest.parent_id, which gateway.proto does not have",
    ],
    [
      "evidence no test backs",
      () =>
        complianceProblems(
          docText,
          gatewayText,
          rpcText,
          evidenceText.replaceAll("leave_stopped", "left_stopped"),
        ),
      "leave_stopped: evidence effect, yet no test of optionsReceived.test.ts names it",
    ],
    [
      "a new CRIU option without a row",
      () =>
        complianceProblems(
          docText,
          gatewayText,
          mutate(
            rpcText,
            "optional bool log_to_stderr = 71;",
            "optional bool log_to_stderr = 71;\n  optional bool check_mounts = 128;",
          ),
          evidenceText,
        ),
      "criu_opts.check_mounts (128): no row in Options",
    ],
    [
      "a missing request type row",
      () =>
        complianceProblems(
          mutate(docText, `${rowOf("`WAIT_PID` (11)")}\n`, ""),
          gatewayText,
          rpcText,
          evidenceText,
        ),
      "criu_req_type.WAIT_PID (11): no row in Requests",
    ],
    [
      "an RPC in no row",
      () =>
        complianceProblems(
          mutate(docText, `${rowOf("`GetCheckpoint`")}\n`, ""),
          gatewayText,
          rpcText,
          evidenceText,
        ),
      "CriuService.GetCheckpoint: in no row of Requests or RPCs beyond CRIU's requests",
    ],
    [
      "a row naming an RPC that does not exist",
      () => {
        const row = rowOf("`CHECK` (3)");
        return complianceProblems(
          mutate(docText, row, row.replace("`Check`", "`Chek`")),
          gatewayText,
          rpcText,
          evidenceText,
        );
      },
      "Requests, CHECK: names Chek, which CriuService does not have",
    ],
    [
      "a planned RPC that has landed",
      () =>
        complianceProblems(
          mutate(docText, /\| `ListPageServers` +\| yes +\|/, "| `ListPageServers` | planned |"),
          gatewayText,
          rpcText,
          evidenceText,
        ),
      "RPCs beyond CRIU's requests, `ListPageServers`: ListPageServers is in CriuService now: mark the row yes",
    ],
    [
      "a new request type without a row",
      () =>
        complianceProblems(
          docText,
          gatewayText,
          mutate(rpcText, "SINGLE_PRE_DUMP = 13;", "SINGLE_PRE_DUMP = 13;\n\tDEDUP = 14;"),
          evidenceText,
        ),
      "criu_req_type.DEDUP (14): no row in Requests",
    ],
  ];

  test.each(cases)("%s", (_name, problems, expected) => {
    expect(problems()).toContain(expected);
  });
});
