// The criu_req / criu_resp codec (src/criu/wire.ts). CRIU tells "set to the default" from "not set"
// (has_* in protobuf-c), so what matters is field presence on the wire, checked here with a
// protobufjs decoder of our own, independent of the codec's.
import { join } from "node:path";
import protobuf from "protobufjs";
import { describe, expect, test } from "vitest";
import { criuOpts, criuReq as tsProtoCriuReq } from "../../gen/criu/rpc.js";
import {
  type CriuReq,
  CriuReqType,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
} from "../../src/criu/wire.js";
import { packageRoot } from "../../src/packageRoot.js";

const root = protobuf.loadSync(join(packageRoot, "proto", "criu", "rpc.proto"));
const reqType = root.lookupType("criu_req");
const respType = root.lookupType("criu_resp");

function has(message: object, field: string): boolean {
  return Object.hasOwn(message, field);
}

/** ts-proto's criu_opts type lists every repeated field; the codec needs only what is set. */
function opts(fields: Partial<criuOpts> & { imagesDirFd: number }): criuOpts {
  return fields as criuOpts;
}

// Each of these equals the field's proto2 default, and each means something to CRIU when present.
const explicitDefaults: CriuReq = {
  type: CriuReqType.DUMP,
  opts: opts({
    imagesDirFd: 5,
    leaveRunning: false,
    timeout: 0,
    manageCgroupsMode: 0, // IGNORE
    logLevel: 2,
    external: [],
  }),
};

describe("encodeRequest", () => {
  test("fields set to their default values are present on the wire", () => {
    const decoded = reqType.decode(encodeRequest(explicitDefaults)) as protobuf.Message & {
      opts: protobuf.Message & Record<string, unknown>;
    };
    expect(has(decoded, "type")).toBe(true);
    expect(has(decoded, "opts")).toBe(true);
    const o = decoded.opts;
    for (const field of ["imagesDirFd", "leaveRunning", "timeout", "manageCgroupsMode", "logLevel"]) {
      expect(has(o, field), `criu_opts.${field} present`).toBe(true);
    }
    expect(o.imagesDirFd).toBe(5);
    expect(o.leaveRunning).toBe(false);
    expect(o.timeout).toBe(0);
    expect(o.manageCgroupsMode).toBe(0);
    expect(o.logLevel).toBe(2);
  });

  test("fields left unset are absent on the wire", () => {
    const decoded = reqType.decode(encodeRequest(explicitDefaults)) as protobuf.Message & {
      opts: protobuf.Message & Record<string, unknown>;
    };
    for (const field of ["notifySuccess", "keepOpen", "features", "pid"]) {
      expect(has(decoded, field), `criu_req.${field} absent`).toBe(false);
    }
    for (const field of [
      "pid",
      "shellJob",
      "cpuCap",
      "ghostLimit",
      "imagesDir",
      "workDirFd",
      "notifyScripts",
    ]) {
      expect(has(decoded.opts, field), `criu_opts.${field} absent`).toBe(false);
    }
    expect(decoded.opts.external).toEqual([]);
  });

  test("ts-proto's own encoder would drop them (why the codec uses protobufjs)", () => {
    const full = { ...explicitDefaults, opts: criuOpts.fromPartial(explicitDefaults.opts!) };
    const bytes = tsProtoCriuReq.encode(full).finish();
    const decoded = reqType.decode(bytes) as protobuf.Message & { opts: protobuf.Message };
    expect(has(decoded.opts, "leaveRunning")).toBe(false);
    expect(has(decoded.opts, "timeout")).toBe(false);
    expect(has(decoded.opts, "manageCgroupsMode")).toBe(false);
    // Even the required type is dropped when it is EMPTY (0): the datagram would be empty.
    expect(tsProtoCriuReq.encode({ type: CriuReqType.EMPTY }).finish()).toHaveLength(0);
  });

  test("the required type is encoded even when it is EMPTY (0)", () => {
    expect([...encodeRequest({ type: CriuReqType.EMPTY })]).toEqual([0x08, 0x00]);
  });

  test("a request type outside the enum is refused", () => {
    expect(() => encodeRequest({ type: 99 as CriuReqType })).toThrow(/invalid criu_req/);
  });

  test("decodeRequest reads back what encodeRequest wrote, presence included", () => {
    const decoded = decodeRequest(
      encodeRequest({ ...explicitDefaults, keepOpen: false, notifySuccess: true }),
    );
    expect(decoded).toEqual({
      type: CriuReqType.DUMP,
      opts: { imagesDirFd: 5, leaveRunning: false, timeout: 0, manageCgroupsMode: 0, logLevel: 2 },
      keepOpen: false,
      notifySuccess: true,
    });
  });
});

describe("decodeResponse", () => {
  const versionResp = {
    type: CriuReqType.VERSION,
    success: true,
    version: { majorNumber: 4, minorNumber: 1, sublevel: 1, gitid: "v4.1.1-0-gdeadbeef", name: "criu" },
  };
  const versionBytes = respType.encode(respType.fromObject(versionResp)).finish();

  test("decodes a complete criu_resp, with only the fields that were set", () => {
    expect(decodeResponse(versionBytes)).toEqual(versionResp);
    const failure = decodeResponse(encodeResponse({ type: CriuReqType.DUMP, success: false, crErrno: 0 }));
    expect(failure).toEqual({ type: CriuReqType.DUMP, success: false, crErrno: 0 });
    expect(has(failure, "crErrmsg")).toBe(false);
  });

  test("throws on garbage", () => {
    expect(() =>
      decodeResponse(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    ).toThrow();
    expect(() => decodeResponse(Buffer.from("this is not a criu_resp at all"))).toThrow();
  });

  test("throws on truncated bytes, wherever inside the last field the cut falls", () => {
    // type (2 bytes) and success (2 bytes) come first; the version message is the rest.
    expect(versionBytes.length).toBeGreaterThan(10);
    for (let length = 5; length < versionBytes.length; length++) {
      expect(() => decodeResponse(versionBytes.subarray(0, length)), `cut at ${length}`).toThrow();
    }
  });

  test("throws on a message missing a required field", () => {
    const typeOnly = protobuf.Writer.create().uint32(0x08).int32(CriuReqType.VERSION).finish();
    expect(() => decodeResponse(typeOnly)).toThrow(/missing required 'success'/);
    const successOnly = protobuf.Writer.create().uint32(0x10).bool(true).finish();
    expect(() => decodeResponse(successOnly)).toThrow(/missing required 'type'/);
    // criu_version.major_number is required too, one level down.
    // (protobufjs's encoder always writes required fields, so these bytes are put together by hand.)
    const noMajor = protobuf.Writer.create()
      .uint32(0x08)
      .int32(CriuReqType.VERSION)
      .uint32(0x10)
      .bool(true)
      .uint32((10 << 3) | 2) // version
      .bytes(Uint8Array.from([0x10, 0x01])) // minor_number = 1 only
      .finish();
    expect(() => decodeResponse(noMajor)).toThrow(/missing required 'majorNumber'/);
  });
});
