// criu.gateway.v1.CriuOptions promises to be CRIU's criu_opts field for field. These tests hold it
// to that: every CRIU option is either mirrored (same name, number, compatible type) or reserved
// for a stated reason, and the gateway invents nothing. A CRIU upgrade that adds an option fails
// here until the option is mirrored or consciously reserved.
import { readFileSync } from "node:fs";
import type { Enum, Field, Root, Type } from "protobufjs";
import protobuf from "protobufjs";
import { describe, expect, test } from "vitest";

const rpcPath = new URL("../../proto/criu/rpc.proto", import.meta.url);
const gatewayPath = new URL("../../proto/criu/gateway/v1/gateway.proto", import.meta.url);
const gatewayPackage = "criu.gateway.v1";

// CRIU message → its mirror in criu.gateway.v1.
const messageMirrors: Record<string, string> = {
  criu_opts: "CriuOptions",
  criu_page_server_info: "PageServerInfo",
  criu_veth_pair: "VethPair",
  ext_mount_map: "ExtMountMap",
  join_namespace: "JoinNamespace",
  cgroup_root: "CgroupRoot",
  unix_sk: "UnixSocket",
};

// CRIU enum → its mirror, whose values carry the mirror's name in SCREAMING_SNAKE_CASE as prefix.
const enumMirrors: Record<string, string> = {
  criu_cg_mode: "CriuCgMode",
  criu_network_lock_method: "CriuNetworkLockMethod",
  criu_pre_dump_mode: "CriuPreDumpMode",
};

// Why a CRIU field is reserved in its mirror rather than mirrored; keyed by CRIU message and number.
// A reserved entry without a reason here, or a reason for a field that is mirrored, fails the test.
const reservedReasons: Record<string, Record<number, string>> = {
  criu_opts: {
    1: "images_dir_fd: an fd of the caller; the gateway opens the checkpoint's directory itself",
    14: "parent_img: a path relative to the images directory; DumpRequest.parent_checkpoint_id names the parent",
    17: "work_dir_fd: an fd of the caller; the gateway gives CRIU its own work directory",
    27: "inherit_fd: fds of the caller's process, which is not on the gateway's host",
    49: "status_fd: an fd of the caller's process, which is not on the gateway's host",
    62: "pidfd_store_sk: a socket fd of the caller's process, which is not on the gateway's host",
    68: "images_dir: a host path; the gateway gives CRIU the checkpoint's directory itself",
  },
  criu_page_server_info: {
    4: "fd: a connection fd of the caller's process, which is not on the gateway's host",
  },
};

// protobufjs parses `required` into `rule` but types only `repeated`; its `required` getter needs
// resolved features, which a bare parse does not have.
function ruleOf(field: Field): string {
  const { rule } = field as Field & { rule?: string };
  if (rule === "required" || rule === "repeated") return rule;
  if (field.map) return "map";
  return "optional";
}

function isScalar(type: string): boolean {
  return Object.hasOwn(protobuf.types.basic, type);
}

// Full name of a message or enum a field names, without the leading dot.
function resolvedName(field: Field): string {
  try {
    return field.parent!.lookupTypeOrEnum(field.type).fullName.replace(/^\./, "");
  } catch {
    return `unresolved ${field.type}`;
  }
}

// The gateway type a CRIU message or enum field must have, through the mirror tables.
function mirrorTypeOf(field: Field): string {
  const criuType = resolvedName(field);
  const mirror = messageMirrors[criuType] ?? enumMirrors[criuType];
  return mirror ? `${gatewayPackage}.${mirror}` : `(no mirror of ${criuType})`;
}

// Message fields have presence in proto3 without `optional`; scalars and enums do not.
function isMessage(field: Field): boolean {
  return !isScalar(field.type) && lookup(() => field.parent!.lookupType(field.type)) !== undefined;
}

// A proto3 oneof protobufjs makes for an `optional` field is not a real oneof.
function realOneof(field: Field): string | undefined {
  return field.partOf && !field.options?.proto3_optional ? field.partOf.name : undefined;
}

// Reserved numbers and names of a message; ranges too wide to justify one by one are reported.
function reservedOf(type: Type, problems: string[]): { numbers: Set<number>; names: Set<string> } {
  const numbers = new Set<number>();
  const names = new Set<string>();
  for (const r of type.reserved ?? []) {
    if (typeof r === "string") {
      names.add(r);
    } else if (r[1]! - r[0]! > 100) {
      problems.push(
        `${type.name}: reserved range ${r[0]} to ${r[1]} is too wide to give each number a reason`,
      );
    } else {
      for (let n = r[0]!; n <= r[1]!; n++) numbers.add(n);
    }
  }
  return { numbers, names };
}

function lookup<T>(find: () => T): T | undefined {
  try {
    return find();
  } catch {
    return undefined;
  }
}

function messageDifferences(
  criuRoot: Root,
  gatewayRoot: Root,
  criuName: string,
  mirrorName: string,
): string[] {
  const problems: string[] = [];
  const criu = lookup(() => criuRoot.lookupType(criuName));
  const mirror = lookup(() => gatewayRoot.lookupType(`${gatewayPackage}.${mirrorName}`));
  if (!criu) return [`${criuName}: no such message in rpc.proto`];
  if (!mirror) return [`${mirrorName}: no such message in gateway.proto (mirror of ${criuName})`];
  const reasons = reservedReasons[criuName] ?? {};
  const reserved = reservedOf(mirror, problems);

  for (const field of criu.fieldsArray) {
    const where = `${criuName}.${field.name} (${field.id})`;
    const twin = mirror.fields[field.name];
    const reason = reasons[field.id];
    if (!twin) {
      if (!reserved.numbers.has(field.id) && !reserved.names.has(field.name)) {
        problems.push(`${where}: neither mirrored nor reserved in ${mirrorName}`);
        continue;
      }
      if (!reserved.numbers.has(field.id)) problems.push(`${where}: reserved in ${mirrorName} by name only`);
      if (!reserved.names.has(field.name))
        problems.push(`${where}: reserved in ${mirrorName} by number only`);
      if (!reason) problems.push(`${where}: reserved in ${mirrorName} without a reason in reservedReasons`);
      continue;
    }
    const at = `${mirrorName}.${twin.name}`;
    if (reason) problems.push(`${where}: mirrored as ${at}, yet reservedReasons says it is reserved`);
    if (twin.id !== field.id)
      problems.push(`${at}: number ${twin.id}, ${criuName}.${field.name} is ${field.id}`);

    const expected = isScalar(field.type) ? field.type : mirrorTypeOf(field);
    const actual = isScalar(twin.type) ? twin.type : resolvedName(twin);
    if (actual !== expected)
      problems.push(`${at}: type ${actual}, expected ${expected} (CRIU: ${field.type})`);

    const criuRule = ruleOf(field);
    const twinRule = ruleOf(twin);
    if ((criuRule === "repeated") !== (twinRule === "repeated") || twinRule === "map") {
      problems.push(`${at}: ${twinRule}, ${criuName}.${field.name} is ${criuRule}`);
    } else if (criuRule === "optional" && !isMessage(field) && !twin.options?.proto3_optional) {
      // Without presence the gateway could not leave an option unset and let CRIU's default apply.
      problems.push(`${at}: needs \`optional\`, or an unset value would be sent to CRIU as zero`);
    }
    if (realOneof(twin) !== realOneof(field)) {
      problems.push(`${at}: oneof ${realOneof(twin) ?? "(none)"}, CRIU's is ${realOneof(field) ?? "(none)"}`);
    }
  }

  for (const twin of mirror.fieldsArray) {
    if (!criu.fields[twin.name]) problems.push(`${mirrorName}.${twin.name}: ${criuName} has no such field`);
  }
  const criuByNumber = new Map(criu.fieldsArray.map((f) => [f.id, f]));
  for (const n of reserved.numbers) {
    const field = criuByNumber.get(n);
    if (!field) problems.push(`${mirrorName}: reserved number ${n} is no field of ${criuName}`);
    else if (!reasons[n]) problems.push(`${mirrorName}: reserved number ${n} (${field.name}) has no reason`);
  }
  for (const name of reserved.names) {
    const field = criu.fields[name];
    if (!field) problems.push(`${mirrorName}: reserved name "${name}" is no field of ${criuName}`);
    else if (!reasons[field.id]) problems.push(`${mirrorName}: reserved name "${name}" has no reason`);
  }
  for (const n of Object.keys(reasons).map(Number)) {
    if (!criuByNumber.has(n)) problems.push(`reservedReasons.${criuName}: ${n} is no field of ${criuName}`);
  }
  return problems;
}

// CriuCgMode → CRIU_CG_MODE_.
function valuePrefix(enumName: string): string {
  return `${enumName.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}_`;
}

function enumDifferences(criuRoot: Root, gatewayRoot: Root, criuName: string, mirrorName: string): string[] {
  const problems: string[] = [];
  const criu = lookup((): Enum => criuRoot.lookupEnum(criuName));
  const mirror = lookup((): Enum => gatewayRoot.lookupEnum(`${gatewayPackage}.${mirrorName}`));
  if (!criu) return [`${criuName}: no such enum in rpc.proto`];
  if (!mirror) return [`${mirrorName}: no such enum in gateway.proto (mirror of ${criuName})`];
  const prefix = valuePrefix(mirrorName);
  const criuHasZero = Object.values(criu.values).includes(0);
  // proto3 needs a zero value; where CRIU has none, the mirror adds <PREFIX>UNSPECIFIED = 0.
  const unspecified = `${prefix}UNSPECIFIED`;

  for (const [name, number] of Object.entries(criu.values)) {
    const twin = mirror.values[`${prefix}${name}`];
    if (twin === undefined)
      problems.push(`${criuName}.${name} (${number}): missing from ${mirrorName} as ${prefix}${name}`);
    else if (twin !== number)
      problems.push(`${mirrorName}.${prefix}${name}: number ${twin}, ${criuName}.${name} is ${number}`);
  }
  for (const [name, number] of Object.entries(mirror.values)) {
    if (name === unspecified && !criuHasZero) {
      if (number !== 0) problems.push(`${mirrorName}.${name}: number ${number}, must be 0`);
      continue;
    }
    if (!name.startsWith(prefix)) problems.push(`${mirrorName}.${name}: lacks the prefix ${prefix}`);
    else if (criu.values[name.slice(prefix.length)] === undefined) {
      problems.push(`${mirrorName}.${name}: ${criuName} has no value ${name.slice(prefix.length)}`);
    }
  }
  if (!criuHasZero && mirror.values[unspecified] === undefined) {
    problems.push(`${mirrorName}: lacks ${unspecified} = 0 (${criuName} has no zero value)`);
  }
  const first = Object.values(mirror.values)[0];
  if (first !== 0) problems.push(`${mirrorName}: its first value is ${first}, proto3 needs 0`);
  return problems;
}

function parseRoots(rpcText: string, gatewayText: string): { criuRoot: Root; gatewayRoot: Root } {
  // A bare parse records gateway.proto's google/protobuf import without loading it; nothing
  // mirrored refers to it.
  return {
    criuRoot: protobuf.parse(rpcText, { keepCase: true }).root,
    gatewayRoot: protobuf.parse(gatewayText, { keepCase: true }).root,
  };
}

/** Every way gateway.proto's mirrors fall short of rpc.proto, one line each; empty when none. */
function mirrorDifferences(rpcText: string, gatewayText: string): string[] {
  const { criuRoot, gatewayRoot } = parseRoots(rpcText, gatewayText);
  return [
    ...Object.entries(messageMirrors).flatMap(([c, g]) => messageDifferences(criuRoot, gatewayRoot, c, g)),
    ...Object.entries(enumMirrors).flatMap(([c, g]) => enumDifferences(criuRoot, gatewayRoot, c, g)),
  ];
}

const rpcText = readFileSync(rpcPath, "utf8");
const gatewayText = readFileSync(gatewayPath, "utf8");

// Replaces text that must occur exactly once, so a mutant can never silently equal the original.
function mutate(text: string, from: string, to: string): string {
  const count = text.split(from).length - 1;
  if (count !== 1) throw new Error(`expected exactly one ${JSON.stringify(from)}, found ${count}`);
  return text.replace(from, to);
}

describe("gateway.proto mirrors CRIU's rpc.proto", () => {
  const { criuRoot, gatewayRoot } = parseRoots(rpcText, gatewayText);

  test.each(Object.entries(messageMirrors))("message %s as %s", (criuName, mirrorName) => {
    expect(messageDifferences(criuRoot, gatewayRoot, criuName, mirrorName)).toEqual([]);
  });

  test.each(Object.entries(enumMirrors))("enum %s as %s", (criuName, mirrorName) => {
    expect(enumDifferences(criuRoot, gatewayRoot, criuName, mirrorName)).toEqual([]);
  });

  test("every CRIU message or enum a mirrored option uses has a mirror", () => {
    const used = new Set<string>();
    for (const criuName of Object.keys(messageMirrors)) {
      const mirror = gatewayRoot.lookupType(`${gatewayPackage}.${messageMirrors[criuName]}`);
      for (const field of criuRoot.lookupType(criuName).fieldsArray) {
        if (mirror.fields[field.name] && !isScalar(field.type)) used.add(resolvedName(field));
      }
    }
    const unmirrored = [...used].filter((name) => !(name in messageMirrors) && !(name in enumMirrors));
    expect(unmirrored).toEqual([]);
  });

  test("every reason names a reserved field", () => {
    for (const [criuName, reasons] of Object.entries(reservedReasons)) {
      expect(Object.keys(messageMirrors)).toContain(criuName);
      for (const reason of Object.values(reasons)) expect(reason.length).toBeGreaterThan(10);
    }
  });
});

describe("the mirror check fails on", () => {
  const cases: [string, string, string, string][] = [
    [
      "a changed field number",
      "optional bool tcp_close = 52;",
      "optional bool tcp_close = 72;",
      "CriuOptions.tcp_close: number 72, criu_opts.tcp_close is 52",
    ],
    [
      "a changed scalar type",
      "optional uint32 timeout = 45;",
      "optional int32 timeout = 45;",
      "CriuOptions.timeout: type int32, expected uint32 (CRIU: uint32)",
    ],
    [
      "a wrongly mapped message type",
      "repeated ExtMountMap ext_mnt = 23;",
      "repeated VethPair ext_mnt = 23;",
      "CriuOptions.ext_mnt: type criu.gateway.v1.VethPair, expected criu.gateway.v1.ExtMountMap (CRIU: ext_mount_map)",
    ],
    [
      "a repeated field made singular",
      "repeated string skip_mnt = 31;",
      "optional string skip_mnt = 31;",
      "CriuOptions.skip_mnt: optional, criu_opts.skip_mnt is repeated",
    ],
    [
      "an option without presence",
      "optional bool tcp_close = 52;",
      "bool tcp_close = 52;",
      "CriuOptions.tcp_close: needs `optional`, or an unset value would be sent to CRIU as zero",
    ],
    [
      "an option neither mirrored nor reserved",
      "  optional bool log_to_stderr = 71;\n",
      "",
      "criu_opts.log_to_stderr (71): neither mirrored nor reserved in CriuOptions",
    ],
    [
      "a field CRIU lacks",
      "  optional bool log_to_stderr = 71;\n",
      "  optional bool log_to_stderr = 71;\n  optional bool check_mounts = 128;\n",
      "CriuOptions.check_mounts: criu_opts has no such field",
    ],
    [
      "a field reserved by number only",
      '"inherit_fd", "status_fd", ',
      '"inherit_fd", ',
      "criu_opts.status_fd (49): reserved in CriuOptions by number only",
    ],
    [
      "a reserved number without a reason",
      "reserved 1, 14, 17,",
      "reserved 1, 14, 17, 40,",
      "CriuOptions: reserved number 40 is no field of criu_opts",
    ],
    [
      "a nested message's fd no longer reserved",
      '  reserved 4;\n  reserved "fd";\n',
      "",
      "criu_page_server_info.fd (4): neither mirrored nor reserved in PageServerInfo",
    ],
    [
      "a renumbered enum value",
      "CRIU_NETWORK_LOCK_METHOD_SKIP = 3;",
      "CRIU_NETWORK_LOCK_METHOD_SKIP = 4;",
      "CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_SKIP: number 4, criu_network_lock_method.SKIP is 3",
    ],
    [
      "an enum value without its prefix",
      "CRIU_CG_MODE_STRICT = 5;",
      "STRICT = 5;",
      "criu_cg_mode.STRICT (5): missing from CriuCgMode as CRIU_CG_MODE_STRICT",
    ],
    [
      "an enum lacking its UNSPECIFIED zero",
      "  CRIU_PRE_DUMP_MODE_UNSPECIFIED = 0;\n",
      "",
      "CriuPreDumpMode: lacks CRIU_PRE_DUMP_MODE_UNSPECIFIED = 0 (criu_pre_dump_mode has no zero value)",
    ],
  ];

  test.each(cases)("%s", (_name, from, to, expected) => {
    expect(mirrorDifferences(rpcText, mutate(gatewayText, from, to))).toContain(expected);
  });

  test("a mirrored field that the reasons table calls reserved", () => {
    let mutant = mutate(gatewayText, "reserved 1, 14, 17, 27, 49,", "reserved 1, 14, 17, 27,");
    mutant = mutate(mutant, '"inherit_fd", "status_fd", ', '"inherit_fd", ');
    mutant = mutate(
      mutant,
      "  optional bool log_to_stderr = 71;\n",
      "  optional bool log_to_stderr = 71;\n  optional int32 status_fd = 49;\n",
    );
    expect(mirrorDifferences(rpcText, mutant)).toEqual([
      "criu_opts.status_fd (49): mirrored as CriuOptions.status_fd, yet reservedReasons says it is reserved",
    ]);
  });

  test("a new CRIU option the gateway has not mirrored yet", () => {
    const newCriu = mutate(
      rpcText,
      "optional bool log_to_stderr = 71;",
      "optional bool log_to_stderr = 71;\n  optional bool check_mounts = 128;",
    );
    expect(mirrorDifferences(newCriu, gatewayText)).toEqual([
      "criu_opts.check_mounts (128): neither mirrored nor reserved in CriuOptions",
    ]);
  });

  test("nothing on the real files", () => {
    expect(mirrorDifferences(rpcText, gatewayText)).toEqual([]);
  });
});
