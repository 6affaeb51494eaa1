import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";

function capture(level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const logger = createLogger(level, (l) => lines.push(l));
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, parsed };
}

describe("the gateway's log", () => {
  it("writes one JSON object per line with an ISO time, the level's name and msg", () => {
    const { logger, lines, parsed } = capture();
    logger.log("warn", "INSECURE LISTENER", { address: "127.0.0.1:5000" });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith("\n")).toBe(true);
    const [line] = parsed();
    expect(line).toMatchObject({ level: "warn", msg: "INSECURE LISTENER", address: "127.0.0.1:5000" });
    expect(new Date(String(line?.time)).toISOString()).toBe(line?.time);
  });

  it("leaves out lines below its level", () => {
    const { logger, parsed } = capture("warn");
    logger.log("info", "chatter");
    logger.log("error", "trouble");
    expect(parsed().map((l) => l.msg)).toEqual(["trouble"]);
  });

  it("redacts key paths and other secrets at any depth it covers", () => {
    const { logger, lines } = capture();
    logger.log("info", "tls loaded", { tls: { certFile: "/etc/c.pem", keyFile: "/etc/secret-key.pem" } });
    logger.log("info", "x", { keyFile: "/etc/other-key.pem", config: { tls: { keyFile: "/deep.pem" } } });
    const text = lines.join("");
    expect(text).not.toContain("secret-key.pem");
    expect(text).not.toContain("other-key.pem");
    expect(text).not.toContain("/deep.pem");
    expect(text).toContain("/etc/c.pem");
    expect(text).toContain("[redacted]");
  });

  it("gives child loggers their bindings on every line", () => {
    const { logger, parsed } = capture();
    const call = logger.child({ call: "c-1", traceId: "abc" });
    call.log("info", "admitted");
    call.child({ step: "dump" }).log("info", "worker started");
    expect(parsed()).toEqual([
      expect.objectContaining({ call: "c-1", traceId: "abc", msg: "admitted" }),
      expect.objectContaining({ call: "c-1", traceId: "abc", step: "dump", msg: "worker started" }),
    ]);
  });

  it("logs an error's name, message and stack, not an empty object", () => {
    const { logger, parsed } = capture();
    logger.log("error", "failed", { error: new RangeError("out of range") });
    const error = parsed()[0]?.error as Record<string, unknown>;
    expect(error).toMatchObject({ type: "RangeError", message: "out of range" });
    expect(String(error.stack)).toContain("RangeError: out of range");
  });
});
