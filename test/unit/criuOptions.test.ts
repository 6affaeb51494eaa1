// Every CriuOptions field has a class, never-class options are refused for everyone, values are
// checked before a worker starts, and the translation to criu_opts keeps exactly what was set —
// including explicit zeros and falses, all the way through CRIU's wire encoding.
import { describe, expect, test } from "vitest";
import {
  CriuCgMode,
  CriuNetworkLockMethod,
  CriuOptions,
  CriuPreDumpMode,
} from "../../gen/criu/gateway/v1/gateway.js";
import { CriuReqType, decodeRequest, encodeRequest } from "../../src/criu/wire.js";
import {
  checkOptionClasses,
  type GatewaySettings,
  OPTION_CLASSES,
  type OptionClass,
  protoName,
  setOptions,
  toCriuOpts,
  validateOptionValues,
} from "../../src/domain/criuOptions.js";
import { GatewayError } from "../../src/domain/errors.js";

const SAFE: ReadonlySet<OptionClass> = new Set(["safe"]);
const SAFE_AND_ADMIN: ReadonlySet<OptionClass> = new Set(["safe", "admin"]);

const NEVER = [
  "logFile",
  "execCmd",
  "configFile",
  "tlsCacert",
  "tlsCacrl",
  "tlsCert",
  "tlsKey",
  "rstSibling",
];

/** A set value for each never-class option, of the right type. */
const NEVER_VALUES: Partial<CriuOptions> = {
  logFile: "/etc/passwd",
  execCmd: ["/bin/sh", "-c", "id"],
  configFile: "/tmp/evil.conf",
  tlsCacert: "/etc/ssl/ca.pem",
  tlsCacrl: "/etc/ssl/ca.crl",
  tlsCert: "/etc/ssl/cert.pem",
  tlsKey: "/etc/ssl/key.pem",
  rstSibling: true,
};

const settings: GatewaySettings = { imagesDirFd: 17, logFile: "dump.log" };

function thrownBy(fn: () => void): GatewayError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(GatewayError);
  return thrown as GatewayError;
}

describe("classes", () => {
  test("every CriuOptions field is classified, and nothing else", () => {
    const fields = Object.keys(CriuOptions.fromPartial({})).sort();
    expect(fields.length).toBeGreaterThan(50);
    expect(Object.keys(OPTION_CLASSES).sort()).toEqual(fields);
  });

  test("the never class is exactly the options that reach host files, commands or the gateway itself", () => {
    const never = Object.entries(OPTION_CLASSES)
      .filter(([, cls]) => cls === "never")
      .map(([name]) => name);
    expect(never.sort()).toEqual([...NEVER].sort());
    expect(Object.keys(NEVER_VALUES).sort()).toEqual([...NEVER].sort());
  });

  test("protoName spells fields as the proto does", () => {
    expect(protoName("configFile")).toBe("config_file");
    expect(protoName("tlsNoCnVerify")).toBe("tls_no_cn_verify");
    expect(protoName("pid")).toBe("pid");
  });
});

describe("checkOptionClasses", () => {
  test.each(NEVER)("%s is refused for everyone, by its proto name", (name) => {
    const options = CriuOptions.fromPartial({ [name]: NEVER_VALUES[name as keyof CriuOptions] });
    for (const allowed of [SAFE, SAFE_AND_ADMIN]) {
      const err = thrownBy(() => checkOptionClasses(options, allowed));
      expect(err.code).toBe("PERMISSION_DENIED");
      expect(err.message).toContain(protoName(name));
    }
  });

  test("config_file is named in snake_case with its reason", () => {
    const err = thrownBy(() =>
      checkOptionClasses(CriuOptions.fromPartial({ configFile: "/x.conf" }), SAFE_AND_ADMIN),
    );
    expect(err.message).toContain("config_file");
    expect(err.message).not.toContain("configFile");
    expect(err.message).toMatch(/configuration file/);
  });

  test("every refused option is named, not just the first", () => {
    const err = thrownBy(() =>
      checkOptionClasses(CriuOptions.fromPartial({ execCmd: ["x"], tlsKey: "/k", root: "/r" }), SAFE),
    );
    expect(err.message).toContain("exec_cmd");
    expect(err.message).toContain("tls_key");
    expect(err.message).toContain("root");
  });

  test("a never option set to its zero value is still refused: set means sent", () => {
    for (const options of [{ rstSibling: false }, { configFile: "" }, { logFile: "" }]) {
      const err = thrownBy(() => checkOptionClasses(CriuOptions.fromPartial(options), SAFE_AND_ADMIN));
      expect(err.code).toBe("PERMISSION_DENIED");
    }
  });

  test("safe options pass for a caller allowed only safe ones", () => {
    const options = CriuOptions.fromPartial({
      pid: 1234,
      leaveRunning: false,
      tcpEstablished: true,
      shellJob: true,
      logLevel: 4,
      timeout: 0,
      notifyScripts: true,
      logToStderr: true,
      preDumpMode: CriuPreDumpMode.CRIU_PRE_DUMP_MODE_SPLICE,
    });
    expect(() => checkOptionClasses(options, SAFE)).not.toThrow();
    expect(() => checkOptionClasses(undefined, SAFE)).not.toThrow();
    expect(() => checkOptionClasses(CriuOptions.fromPartial({}), SAFE)).not.toThrow();
  });

  test("empty repeated fields are not set, so an empty exec_cmd is not refused", () => {
    expect(() =>
      checkOptionClasses(CriuOptions.fromPartial({ execCmd: [], external: [] }), SAFE),
    ).not.toThrow();
  });

  test.each<[string, Partial<CriuOptions>]>([
    ["root", { root: "/var/lib/containers/x" }],
    ["external", { external: ["mnt[/a]:b"] }],
    ["manage_cgroups_mode", { manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_IGNORE }],
    ["network_lock", { networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_SKIP }],
    ["ps", { ps: { address: "10.0.0.1", port: 1 } }],
    // A dump with it serves the frozen memory, unauthenticated, on every address.
    ["lazy_pages", { lazyPages: true }],
    // CRIU links the deleted file back into its directory on the host, as root.
    ["link_remap", { linkRemap: true }],
    // CRIU connects to the external socket by its path, as root, at restore.
    ["ext_unix_sk", { extUnixSk: true }],
  ])("admin option %s is refused to a safe-only caller, saying administrators", (name, given) => {
    const options = CriuOptions.fromPartial(given);
    const err = thrownBy(() => checkOptionClasses(options, SAFE));
    expect(err.code).toBe("PERMISSION_DENIED");
    expect(err.message).toContain(name);
    expect(err.message).toContain("administrators");
    expect(() => checkOptionClasses(options, SAFE_AND_ADMIN)).not.toThrow();
  });
});

describe("validateOptionValues", () => {
  test.each<[string, Partial<CriuOptions>]>([
    ["log_level", { logLevel: 5 }],
    ["log_level", { logLevel: -1 }],
    ["ps.port", { ps: { port: 70000 } }],
    ["ps.port", { ps: { port: -1 } }],
    ["manage_cgroups_mode", { manageCgroupsMode: -1 as CriuCgMode }],
    ["network_lock", { networkLock: -1 as CriuNetworkLockMethod }],
    ["pre_dump_mode", { preDumpMode: -1 as CriuPreDumpMode }],
  ])("%s %j is INVALID_ARGUMENT naming the field", (name, given) => {
    const err = thrownBy(() => validateOptionValues(CriuOptions.fromPartial(given)));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toContain(name);
  });

  test("values in range pass", () => {
    for (const given of [
      { logLevel: 0 },
      { logLevel: 4 },
      { ps: { port: 0 } },
      { ps: { port: 65535 } },
      { ps: { address: "127.0.0.1" } },
      { manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_IGNORE },
    ]) {
      expect(() => validateOptionValues(CriuOptions.fromPartial(given))).not.toThrow();
    }
    expect(() => validateOptionValues(undefined)).not.toThrow();
  });
});

describe("toCriuOpts", () => {
  test("copies set fields under the same names and adds the gateway's own", () => {
    const options = CriuOptions.fromPartial({
      pid: 4242,
      leaveRunning: true,
      shellJob: false,
      logLevel: 4,
      external: ["mnt[/data]:data"],
      ps: { address: "127.0.0.1", port: 1234 },
      cgRoot: [{ ctrl: "cpu", path: "/x" }],
    });
    expect(toCriuOpts(options, settings)).toEqual({
      pid: 4242,
      leaveRunning: true,
      shellJob: false,
      logLevel: 4,
      external: ["mnt[/data]:data"],
      ps: { address: "127.0.0.1", port: 1234, pid: undefined },
      cgRoot: [{ ctrl: "cpu", path: "/x" }],
      imagesDirFd: 17,
      logFile: "dump.log",
    });
  });

  test("unset fields and empty arrays are left out", () => {
    const out = toCriuOpts(CriuOptions.fromPartial({ pid: 1, skipMnt: [], execCmd: [] }), settings);
    expect(Object.keys(out).sort()).toEqual(["imagesDirFd", "logFile", "pid"]);
    expect(Object.keys(toCriuOpts(undefined, settings)).sort()).toEqual(["imagesDirFd", "logFile"]);
  });

  test("log_to_stderr means no log file", () => {
    const out = toCriuOpts(CriuOptions.fromPartial({ logToStderr: true }), settings);
    expect(out).not.toHaveProperty("logFile");
    expect(out.logToStderr).toBe(true);
    expect(toCriuOpts(CriuOptions.fromPartial({ logToStderr: false }), settings).logFile).toBe("dump.log");
  });

  test("the gateway's log file wins over none; a caller's log_file never reaches CRIU through it", () => {
    // log_file is refused earlier (never class); even if it got here, the gateway's name wins.
    const out = toCriuOpts(CriuOptions.fromPartial({ logFile: "/etc/passwd" }), settings);
    expect(out.logFile).toBe("dump.log");
  });

  test("parent_img and notify_scripts come from the gateway's settings", () => {
    const out = toCriuOpts(CriuOptions.fromPartial({}), {
      ...settings,
      parentImg: "../base",
      notifyScripts: true,
    });
    expect(out.parentImg).toBe("../base");
    expect(out.notifyScripts).toBe(true);
    const plain = toCriuOpts(CriuOptions.fromPartial({}), settings);
    expect(plain).not.toHaveProperty("parentImg");
    expect(plain).not.toHaveProperty("notifyScripts");
    // The caller's own notify_scripts is passed on when the gateway does not force it.
    expect(toCriuOpts(CriuOptions.fromPartial({ notifyScripts: true }), settings).notifyScripts).toBe(true);
  });

  test("zero enums mean CRIU's default, except cgroup mode where 0 is IGNORE", () => {
    const out = toCriuOpts(
      CriuOptions.fromPartial({
        networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_UNSPECIFIED,
        preDumpMode: CriuPreDumpMode.CRIU_PRE_DUMP_MODE_UNSPECIFIED,
        manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_IGNORE,
      }),
      settings,
    );
    expect(out).not.toHaveProperty("networkLock");
    expect(out).not.toHaveProperty("preDumpMode");
    expect(out).toHaveProperty("manageCgroupsMode", 0);

    const set = toCriuOpts(
      CriuOptions.fromPartial({
        networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_NFTABLES,
        preDumpMode: CriuPreDumpMode.CRIU_PRE_DUMP_MODE_VM_READ,
      }),
      settings,
    );
    expect(set.networkLock).toBe(2);
    expect(set.preDumpMode).toBe(2);
  });

  test("explicit false and zero survive CRIU's wire encoding as present fields", () => {
    const opts = toCriuOpts(
      CriuOptions.fromPartial({
        pid: 99,
        leaveRunning: false,
        timeout: 0,
        logLevel: 0,
        manageCgroupsMode: CriuCgMode.CRIU_CG_MODE_IGNORE,
        networkLock: CriuNetworkLockMethod.CRIU_NETWORK_LOCK_METHOD_UNSPECIFIED,
      }),
      { ...settings, parentImg: "../base", notifyScripts: true },
    );
    const decoded = decodeRequest(encodeRequest({ type: CriuReqType.DUMP, opts }));
    expect(decoded.type).toBe(CriuReqType.DUMP);
    const got = decoded.opts!;
    expect(got).toHaveProperty("leaveRunning", false);
    expect(got).toHaveProperty("timeout", 0);
    expect(got).toHaveProperty("logLevel", 0);
    expect(got).toHaveProperty("manageCgroupsMode", 0);
    expect(got).not.toHaveProperty("networkLock");
    expect(got).not.toHaveProperty("shellJob");
    expect(got).toMatchObject({
      pid: 99,
      imagesDirFd: 17,
      logFile: "dump.log",
      parentImg: "../base",
      notifyScripts: true,
    });
  });
});

describe("setOptions", () => {
  test("lists the fields that would reach CRIU", () => {
    expect(setOptions(undefined)).toEqual([]);
    expect(setOptions(CriuOptions.fromPartial({}))).toEqual([]);
    expect(
      setOptions(
        CriuOptions.fromPartial({ pid: 0, leaveRunning: false, skipMnt: [], external: ["x"] }),
      ).sort(),
    ).toEqual(["external", "leaveRunning", "pid"]);
  });
});
