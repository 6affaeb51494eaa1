// Errors become gRPC statuses in one place: GatewayErrors keep their code and message and carry
// CRIU's detail in a google.rpc.Status trailer; anything else is INTERNAL and reveals nothing.
import type { IncomingHttpHeaders } from "node:http2";
import { Metadata, status } from "@grpc/grpc-js";
import { describe, expect, test, vi } from "vitest";
import { ErrorDetail } from "../../gen/criu/gateway/v1/gateway.js";
import { Status } from "../../gen/google/rpc/status.js";
import { type CriuFailureDetail, type ErrorCode, GatewayError } from "../../src/domain/errors.js";
import {
  ERROR_DETAIL_TYPE_URL,
  errorDetailOf,
  STATUS_DETAILS_KEY,
  toServiceError,
} from "../../src/grpc/errorStatus.js";

// A Record over ErrorCode: adding a code to the union without listing it here is a type error.
const ALL_CODES: Record<ErrorCode, true> = {
  CANCELLED: true,
  INVALID_ARGUMENT: true,
  DEADLINE_EXCEEDED: true,
  NOT_FOUND: true,
  ALREADY_EXISTS: true,
  PERMISSION_DENIED: true,
  UNAUTHENTICATED: true,
  RESOURCE_EXHAUSTED: true,
  FAILED_PRECONDITION: true,
  ABORTED: true,
  UNIMPLEMENTED: true,
  INTERNAL: true,
  UNAVAILABLE: true,
  DATA_LOSS: true,
};
const codes = Object.keys(ALL_CODES) as ErrorCode[];

const detail: CriuFailureDetail = {
  requestType: "DUMP",
  crErrno: 56,
  crErrmsg: "Bad option",
  logTail: ["(00.01) Error (criu/cr-dump.c:1): dump failed", "(00.02) ünïcode line"],
  workerExit: "killed by SIGSEGV",
};

const neverCalled = () => {
  throw new Error("onInternal must not be called for a GatewayError");
};

describe("GatewayError", () => {
  test.each(codes)("%s maps to the gRPC status of the same name and keeps the message", (code) => {
    const message = `something about ${code}`;
    const out = toServiceError(new GatewayError(code, message), neverCalled);
    expect(out.code).toBe(status[code]);
    expect(status[out.code!]).toBe(code);
    expect(out.details).toBe(message);
    expect(out.metadata?.get(STATUS_DETAILS_KEY)).toEqual([]);
  });

  test("the known numbers, as a spot check of the mapping", () => {
    const numbers = Object.fromEntries(
      codes.map((code) => [code, toServiceError(new GatewayError(code, "m"), neverCalled).code]),
    );
    expect(numbers).toEqual({
      CANCELLED: 1,
      INVALID_ARGUMENT: 3,
      DEADLINE_EXCEEDED: 4,
      NOT_FOUND: 5,
      ALREADY_EXISTS: 6,
      PERMISSION_DENIED: 7,
      UNAUTHENTICATED: 16,
      RESOURCE_EXHAUSTED: 8,
      FAILED_PRECONDITION: 9,
      ABORTED: 10,
      UNIMPLEMENTED: 12,
      INTERNAL: 13,
      UNAVAILABLE: 14,
      DATA_LOSS: 15,
    });
  });

  test.each(codes)("%s with CRIU's detail carries it in grpc-status-details-bin", (code) => {
    const message = "CRIU could not dump: Bad option";
    const out = toServiceError(new GatewayError(code, message, detail), neverCalled);
    const values = out.metadata!.get(STATUS_DETAILS_KEY);
    expect(values).toHaveLength(1);
    expect(Buffer.isBuffer(values[0])).toBe(true);

    const rich = Status.decode(values[0] as Buffer);
    expect(rich.code).toBe(status[code]);
    expect(rich.code).toBe(out.code);
    expect(rich.message).toBe(message);
    expect(rich.details).toHaveLength(1);
    expect(rich.details[0]!.typeUrl).toBe("type.googleapis.com/criu.gateway.v1.ErrorDetail");
    expect(ERROR_DETAIL_TYPE_URL).toBe("type.googleapis.com/criu.gateway.v1.ErrorDetail");
    expect(ErrorDetail.decode(rich.details[0]!.value)).toEqual(ErrorDetail.fromPartial(detail));
    expect(errorDetailOf({ metadata: out.metadata })).toEqual(ErrorDetail.fromPartial(detail));
  });

  test("the trailer survives the metadata's wire form (binary header, base64 on HTTP/2)", () => {
    const out = toServiceError(new GatewayError("FAILED_PRECONDITION", "no", detail), neverCalled);
    // What a client receives is rebuilt from the HTTP/2 headers.
    const received = Metadata.fromHttp2Headers(out.metadata!.toHttp2Headers() as IncomingHttpHeaders);
    expect(errorDetailOf({ metadata: received })).toEqual(ErrorDetail.fromPartial(detail));
  });

  test("an empty detail is still sent, with its defaults", () => {
    const empty: CriuFailureDetail = {
      requestType: "",
      crErrno: 0,
      crErrmsg: "",
      logTail: [],
      workerExit: "",
    };
    const out = toServiceError(new GatewayError("INTERNAL", "x", empty), neverCalled);
    expect(out.metadata!.get(STATUS_DETAILS_KEY)).toHaveLength(1);
    expect(errorDetailOf({ metadata: out.metadata })).toEqual(ErrorDetail.fromPartial({}));
  });
});

describe("errorDetailOf", () => {
  test("is undefined without metadata, without the trailer, or with only other details", () => {
    expect(errorDetailOf({})).toBeUndefined();
    expect(errorDetailOf({ metadata: new Metadata() })).toBeUndefined();
    const other = new Metadata();
    other.set(
      STATUS_DETAILS_KEY,
      Buffer.from(
        Status.encode({
          code: 9,
          message: "m",
          details: [{ typeUrl: "type.googleapis.com/google.rpc.DebugInfo", value: Buffer.from([1, 2]) }],
        }).finish(),
      ),
    );
    expect(errorDetailOf({ metadata: other })).toBeUndefined();
  });
});

describe("anything else", () => {
  const secret = "EACCES: permission denied, open '/etc/shadow'";

  test.each<[string, () => unknown]>([
    ["an Error", () => new Error(secret)],
    ["an Error with a cause", () => new Error(secret, { cause: new Error("/root/.ssh/id_rsa") })],
    ["a TypeError", () => new TypeError(secret)],
    ["a string", () => secret],
    ["undefined", () => undefined],
    ["null", () => null],
    ["an object", () => ({ code: "NOT_FOUND", message: secret })],
  ])("%s becomes INTERNAL with a generic message; the original goes to onInternal only", (_what, make) => {
    const thrown = make();
    const onInternal = vi.fn();
    const out = toServiceError(thrown, onInternal);
    expect(out.code).toBe(status.INTERNAL);
    expect(typeof out.details).toBe("string");
    expect(out.details!.length).toBeGreaterThan(0);
    expect(out.details).not.toContain("/etc/shadow");
    expect(out.details).not.toContain("EACCES");
    expect(out.details).not.toContain("id_rsa");
    if (thrown instanceof Error) expect(out.details).not.toContain(thrown.stack!.split("\n")[1]!.trim());
    expect(out.metadata?.get(STATUS_DETAILS_KEY) ?? []).toEqual([]);
    expect(onInternal).toHaveBeenCalledTimes(1);
    expect(onInternal.mock.calls[0]![0]).toBe(thrown);
  });

  test("an error that only looks like a GatewayError is not trusted", () => {
    const impostor = Object.assign(new Error(secret), { name: "GatewayError", code: "NOT_FOUND" });
    const onInternal = vi.fn();
    const out = toServiceError(impostor, onInternal);
    expect(out.code).toBe(status.INTERNAL);
    expect(out.details).not.toContain("/etc/shadow");
    expect(onInternal).toHaveBeenCalledWith(impostor);
  });
});
