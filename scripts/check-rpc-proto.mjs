// Compares our transcription of CRIU's wire protocol (proto/criu/rpc.proto) with CRIU's own
// images/rpc.proto, semantically: comments and layout may differ, nothing that reaches the wire or
// generated code may.
//
//   node scripts/check-rpc-proto.mjs [ours] [theirs]
//
// Prints one line per difference ("criu_opts.pid: number 2 vs 3", ours first) and exits 1, or
// prints a one-line summary and exits 0. When CRIU's source tree is missing, runs
// scripts/install-criu.sh to fetch it first.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const defaultOursPath = path.join(repoRoot, "proto/criu/rpc.proto");
export const defaultTheirsPath = path.join(repoRoot, ".criu/source/images/rpc.proto");

// JSON with sorted keys, so that aggregate option values compare by content, not key order.
function stable(value) {
  if (value === undefined) return "(none)";
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stable(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// protobufjs records `syntax` only on the top-level objects of a file; nested ones inherit it.
// Package namespaces always say proto2 whatever the file's syntax, so they do not count.
function ownEdition(obj) {
  return obj.constructor === protobuf.Namespace ? undefined : obj._edition || undefined;
}

function editionOf(obj) {
  for (let o = obj; o; o = o.parent) {
    const edition = ownEdition(o);
    if (edition) return edition;
  }
  return "proto2";
}

function nameOf(obj) {
  return obj.fullName.replace(/^\./, "");
}

// Reserved and extension ranges: "1", "5-9" and quoted names, sorted so order does not matter.
function ranges(list) {
  if (!list || list.length === 0) return "(none)";
  const items = list.map((r) => {
    if (typeof r === "string") return JSON.stringify(r);
    return r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`;
  });
  return items.sort().join(", ");
}

function addOptions(props, options, skip = []) {
  for (const [key, value] of Object.entries(options ?? {})) {
    if (!skip.includes(key)) props.set(`option ${key}`, stable(value));
  }
}

// The type a field or method names, resolved to its full name where it can be, so that `foo` and
// `.foo` written in different scopes compare equal; scalars stay as written.
function typeName(scope, name) {
  if (Object.hasOwn(protobuf.types.basic, name)) return name;
  try {
    return nameOf(scope.lookupTypeOrEnum(name));
  } catch {
    return `unresolved ${name}`;
  }
}

// proto2 optional is rule "optional" or undefined depending on the protobufjs version; proto3
// singular fields are optional only when declared so (proto3_optional), implicit otherwise.
function ruleOf(field) {
  if (field.rule === "required" || field.rule === "repeated") return field.rule;
  if (field.map) return "map";
  if (editionOf(field) === "proto3") return field.options?.proto3_optional ? "optional" : "implicit";
  return "optional";
}

function fieldProps(field) {
  const props = new Map();
  const scope = field.parent;
  props.set("number", String(field.id));
  props.set("rule", ruleOf(field));
  props.set("type", typeName(scope, field.type));
  if (field.map) props.set("key type", field.keyType);
  if (field.extend !== undefined) props.set("extends", typeName(scope, field.extend));
  // proto3_optional's synthetic oneof is already expressed by the rule.
  const oneof = field.partOf && !field.options?.proto3_optional ? field.partOf.name : undefined;
  props.set("oneof", oneof ?? "(none)");
  addOptions(props, field.options, ["proto3_optional"]);
  return props;
}

// Flattens a parsed file into entities keyed by full name: kind plus the properties that matter.
function entities(text, label) {
  let parsed;
  try {
    parsed = protobuf.parse(text, { keepCase: true });
  } catch (err) {
    throw new Error(`${label}: does not parse: ${err instanceof Error ? err.message : err}`);
  }
  const out = new Map();
  const syntaxes = new Set();
  const file = new Map([
    ["package", parsed.package ?? "(none)"],
    ["imports", [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])].sort().join(", ") || "(none)"],
  ]);
  out.set("(file)", { kind: "file", props: file });

  const visit = (ns) => {
    for (const obj of ns.nestedArray) {
      const edition = ownEdition(obj);
      if (edition) syntaxes.add(edition);
      const props = new Map();
      if (obj instanceof protobuf.Type) {
        props.set("reserved", ranges(obj.reserved));
        props.set("extensions", ranges(obj.extensions));
        if (obj.group) props.set("group", "true");
        addOptions(props, obj.options);
        out.set(nameOf(obj), { kind: "message", props });
        for (const field of obj.fieldsArray)
          out.set(nameOf(field), { kind: "field", props: fieldProps(field) });
        for (const oneof of obj.oneofsArray) {
          const synthetic = oneof.fieldsArray.length === 1 && oneof.fieldsArray[0].options?.proto3_optional;
          if (synthetic) continue;
          const oneofProps = new Map();
          addOptions(oneofProps, oneof.options);
          out.set(nameOf(oneof), { kind: "oneof", props: oneofProps });
        }
        visit(obj);
      } else if (obj instanceof protobuf.Enum) {
        props.set("reserved", ranges(obj.reserved));
        // In proto2 the first value is the default of a field without [default = ...].
        props.set("first value", Object.keys(obj.values)[0] ?? "(none)");
        addOptions(props, obj.options);
        out.set(nameOf(obj), { kind: "enum", props });
        for (const [name, number] of Object.entries(obj.values)) {
          const valueProps = new Map([["number", String(number)]]);
          addOptions(valueProps, obj.valuesOptions?.[name]);
          out.set(`${nameOf(obj)}.${name}`, { kind: "enum value", props: valueProps });
        }
      } else if (obj instanceof protobuf.Service) {
        addOptions(props, obj.options);
        out.set(nameOf(obj), { kind: "service", props });
        for (const method of obj.methodsArray) {
          const m = new Map([
            ["request", typeName(obj, method.requestType)],
            ["response", typeName(obj, method.responseType)],
            ["request stream", String(Boolean(method.requestStream))],
            ["response stream", String(Boolean(method.responseStream))],
          ]);
          addOptions(m, method.options);
          out.set(nameOf(method), { kind: "method", props: m });
        }
      } else if (obj instanceof protobuf.Field) {
        // An `extend` block's field, declared at file or message scope.
        out.set(nameOf(obj), { kind: "extension", props: fieldProps(obj) });
      } else if (obj instanceof protobuf.Namespace) {
        addOptions(props, obj.options);
        out.set(nameOf(obj), { kind: "package", props });
        visit(obj);
      }
    }
  };
  visit(parsed.root);
  file.set("syntax", [...syntaxes].sort().join(", ") || "(none)");
  addOptions(file, parsed.root.options);
  return out;
}

function summary(entity) {
  const p = entity.props;
  if (entity.kind === "field" || entity.kind === "extension") {
    return `${entity.kind}: ${p.get("rule")} ${p.get("type")} = ${p.get("number")}`;
  }
  if (entity.kind === "enum value") return `enum value = ${p.get("number")}`;
  return entity.kind;
}

/**
 * Semantic differences between two .proto texts, one readable line each, ours first:
 * "criu_opts.pid: number 2 vs 3", "criu_opts.foo: only in ours (field: optional int32 = 72)".
 * Empty when they are equivalent. Throws when either does not parse.
 */
export function compareProtoText(oursText, theirsText) {
  const ours = entities(oursText, "ours");
  const theirs = entities(theirsText, "theirs");
  const diffs = [];
  for (const [key, a] of ours) {
    const b = theirs.get(key);
    if (!b) {
      diffs.push(`${key}: only in ours (${summary(a)})`);
      continue;
    }
    if (a.kind !== b.kind) {
      diffs.push(`${key}: ${a.kind} vs ${b.kind}`);
      continue;
    }
    for (const prop of new Set([...a.props.keys(), ...b.props.keys()])) {
      const va = a.props.get(prop) ?? "(none)";
      const vb = b.props.get(prop) ?? "(none)";
      if (va !== vb) diffs.push(`${key}: ${prop} ${va} vs ${vb}`);
    }
  }
  for (const [key, b] of theirs) {
    if (!ours.has(key)) diffs.push(`${key}: only in theirs (${summary(b)})`);
  }
  return diffs;
}

/** How many messages, fields, enums and enum values a .proto text holds, for the summary line. */
export function countProtoText(text) {
  const counts = { messages: 0, fields: 0, enums: 0, values: 0 };
  for (const { kind } of entities(text, "file").values()) {
    if (kind === "message") counts.messages++;
    else if (kind === "field" || kind === "extension") counts.fields++;
    else if (kind === "enum") counts.enums++;
    else if (kind === "enum value") counts.values++;
  }
  return counts;
}

function fail(message) {
  console.error(`check-rpc-proto: ${message}`);
  process.exit(1);
}

function main(args) {
  const oursPath = args[0] ? path.resolve(args[0]) : defaultOursPath;
  const theirsPath = args[1] ? path.resolve(args[1]) : defaultTheirsPath;
  if (!existsSync(theirsPath) && theirsPath === defaultTheirsPath) {
    // CRIU's source is unpacked by the installer; its progress goes to stderr, its stdout (the
    // criu binary's path) is of no use here.
    console.error("check-rpc-proto: CRIU's source is missing; running scripts/install-criu.sh");
    const run = spawnSync("bash", [path.join(repoRoot, "scripts/install-criu.sh")], {
      cwd: repoRoot,
      stdio: ["ignore", "ignore", "inherit"],
    });
    if (run.error) fail(`could not run scripts/install-criu.sh: ${run.error.message}`);
    if (run.status !== 0) fail(`scripts/install-criu.sh failed (exit ${run.status ?? run.signal})`);
  }
  if (!existsSync(theirsPath)) fail(`${theirsPath} does not exist; CRIU's rpc.proto is needed to compare`);
  if (!existsSync(oursPath)) fail(`${oursPath} does not exist`);

  const oursText = readFileSync(oursPath, "utf8");
  const theirsText = readFileSync(theirsPath, "utf8");
  let diffs;
  try {
    diffs = compareProtoText(oursText, theirsText);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  const oursName = path.relative(process.cwd(), oursPath) || oursPath;
  const theirsName = path.relative(process.cwd(), theirsPath) || theirsPath;
  if (diffs.length > 0) {
    console.error(`check-rpc-proto: ${oursName} differs from ${theirsName} (ours vs theirs):`);
    for (const d of diffs) console.error(`  ${d}`);
    console.error(`check-rpc-proto: ${diffs.length} difference(s)`);
    process.exit(1);
  }
  const c = countProtoText(theirsText);
  console.log(
    `check-rpc-proto: OK, ${oursName} matches ${theirsName}: ${c.messages} messages, ${c.fields} fields, ` +
      `${c.enums} enums, ${c.values} enum values`,
  );
}

// Run as a command only, not when imported by the tests.
function isMain() {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) main(process.argv.slice(2));
