// proto/criu/rpc.proto must say exactly what CRIU's images/rpc.proto says; these tests run the
// comparison CI runs, and check that the comparison notices each kind of drift.
import { existsSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, test } from "vitest";
import { compareProtoText, defaultOursPath, defaultTheirsPath } from "../../scripts/check-rpc-proto.mjs";

let ours = "";
let theirs = "";

beforeAll(() => {
  // No skipping: without CRIU's source the check proves nothing, so the suite fails instead.
  if (!existsSync(defaultTheirsPath)) {
    throw new Error(
      `CRIU's rpc.proto is missing (${defaultTheirsPath}); run \`bash scripts/install-criu.sh\` to fetch CRIU's source`,
    );
  }
  ours = readFileSync(defaultOursPath, "utf8");
  theirs = readFileSync(defaultTheirsPath, "utf8");
});

// Replaces text that must occur exactly once, so a mutant can never silently equal the original.
function mutate(text: string, from: string, to: string): string {
  const count = text.split(from).length - 1;
  if (count !== 1)
    throw new Error(`expected exactly one ${JSON.stringify(from)} in rpc.proto, found ${count}`);
  return text.replace(from, to);
}

test("proto/criu/rpc.proto matches CRIU's images/rpc.proto", () => {
  expect(compareProtoText(ours, theirs)).toEqual([]);
});

test("CRIU's file compared with itself has no differences", () => {
  expect(compareProtoText(theirs, theirs)).toEqual([]);
});

describe("the comparison fails on", () => {
  test("a changed field number", () => {
    const mutant = mutate(ours, "optional bool tcp_close = 52;", "optional bool tcp_close = 72;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_opts.tcp_close: number 72 vs 52"]);
  });

  test("a changed field type", () => {
    const mutant = mutate(ours, "optional uint32 timeout = 45;", "optional int32 timeout = 45;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_opts.timeout: type int32 vs uint32"]);
  });

  test("a changed message type of a field", () => {
    const mutant = mutate(
      ours,
      "repeated ext_mount_map ext_mnt = 23;",
      "repeated criu_veth_pair ext_mnt = 23;",
    );
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_opts.ext_mnt: type criu_veth_pair vs ext_mount_map",
    ]);
  });

  test("required turned optional", () => {
    const mutant = mutate(ours, "required string if_in = 1;", "optional string if_in = 1;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_veth_pair.if_in: rule optional vs required"]);
  });

  test("repeated turned optional", () => {
    const mutant = mutate(ours, "repeated string skip_mnt = 31;", "optional string skip_mnt = 31;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_opts.skip_mnt: rule optional vs repeated"]);
  });

  test("a renamed field", () => {
    const mutant = mutate(
      ours,
      "optional bool tls_no_cn_verify = 59;",
      "optional bool tls_no_cn_check = 59;",
    );
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_opts.tls_no_cn_check: only in ours (field: optional bool = 59)",
      "criu_opts.tls_no_cn_verify: only in theirs (field: optional bool = 59)",
    ]);
  });

  test("a removed field", () => {
    const mutant = mutate(ours, "  optional bool log_to_stderr = 71;\n", "");
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_opts.log_to_stderr: only in theirs (field: optional bool = 71)",
    ]);
  });

  test("a removed enum value", () => {
    const mutant = mutate(ours, "  VM_READ = 2;\n", "");
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_pre_dump_mode.VM_READ: only in theirs (enum value = 2)",
    ]);
  });

  test("a renumbered enum value", () => {
    const mutant = mutate(ours, "  NFTABLES = 2;", "  NFTABLES = 4;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_network_lock_method.NFTABLES: number 4 vs 2"]);
  });

  test("a changed default", () => {
    const mutant = mutate(ours, "[default = 0x100000]", "[default = 0x10000]");
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_opts.ghost_limit: option default 65536 vs 1048576",
    ]);
  });

  test("a removed default", () => {
    const mutant = mutate(
      ours,
      "optional int32 log_level = 9 [default = 2];",
      "optional int32 log_level = 9;",
    );
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_opts.log_level: option default (none) vs 2"]);
  });

  test("a changed enum default", () => {
    const mutant = mutate(ours, "[default = IPTABLES]", "[default = NFTABLES]");
    expect(compareProtoText(mutant, theirs)).toEqual([
      'criu_opts.network_lock: option default "NFTABLES" vs "IPTABLES"',
    ]);
  });

  test("reordered enum values, which change proto2's implicit default", () => {
    const mutant = mutate(ours, "  SPLICE = 1;\n  VM_READ = 2;", "  VM_READ = 2;\n  SPLICE = 1;");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_pre_dump_mode: first value VM_READ vs SPLICE"]);
  });

  test("a field moved into a oneof", () => {
    const mutant = mutate(
      ours,
      "  optional string cgroup_props = 41;\n",
      "  oneof props {\n    string cgroup_props = 41;\n  }\n",
    );
    expect(compareProtoText(mutant, theirs)).toEqual([
      "criu_opts.cgroup_props: oneof props vs (none)",
      "criu_opts.props: only in ours (oneof)",
    ]);
  });

  test("a reserved range", () => {
    const mutant = mutate(ours, "message criu_opts {\n", "message criu_opts {\n  reserved 40;\n");
    expect(compareProtoText(mutant, theirs)).toEqual(["criu_opts: reserved 40 vs (none)"]);
  });

  test("a package", () => {
    const mutant = mutate(ours, 'syntax = "proto2";\n', 'syntax = "proto2";\npackage criu;\n');
    expect(compareProtoText(mutant, theirs)).toContain("(file): package criu vs (none)");
  });
});

test("the comparison ignores comments, layout and how a number is spelled", () => {
  let mutant = mutate(ours, "[default = 0xffffffff]", "[default = 4294967295]");
  mutant = mutate(mutant, "message criu_veth_pair {", "/* a comment */\nmessage   criu_veth_pair\n{");
  mutant = mutate(mutant, "  optional bool tcp_close = 52;\n", "");
  mutant = mutate(
    mutant,
    "  optional bool leave_stopped = 69;\n",
    "  optional bool tcp_close=52;\n  optional bool leave_stopped = 69;\n",
  );
  expect(compareProtoText(mutant, theirs)).toEqual([]);
});
