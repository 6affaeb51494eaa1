// The configuration: defaults in one place, and every bad setting refused at start-up with a
// message that begins with the setting's name. Addresses are only parsed here; nothing binds.
import { availableParallelism } from "node:os";
import { describe, expect, test } from "vitest";
import {
  ConfigError,
  DEFAULT_ADDRESS,
  defaultConfig,
  type GatewayConfig,
  lookupGroup,
  lookupUser,
  parseListenAddress,
  resolveConfig,
} from "../../src/config.js";
import type { LogLevel } from "../../src/log.js";

function configError(fn: () => unknown): ConfigError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

describe("defaults", () => {
  test("an empty configuration resolves to the defaults", () => {
    const config = resolveConfig({});
    expect(config.listen).toEqual(["unix:/run/criu-gateway/gateway.sock"]);
    expect(DEFAULT_ADDRESS).toBe("unix:/run/criu-gateway/gateway.sock");
    expect(config.imagesRoot).toBe("/var/lib/criu-gateway/images");
    expect(config.unixSocketMode).toBe(0o600);
    expect(config.logLevel).toBe("info");
    expect(config.logTailLines).toBeGreaterThan(0);
    expect(config.vetoGraceMs).toBeGreaterThan(0);
    expect(config.maxReceiveMessageBytes).toBeGreaterThanOrEqual(1024);
    expect(config.criuBin.length).toBeGreaterThan(0);
  });

  test("settings given as undefined keep their defaults", () => {
    const config = resolveConfig({ listen: undefined, imagesRoot: undefined, unixSocketMode: undefined });
    expect(config.listen).toEqual([DEFAULT_ADDRESS]);
    expect(config.imagesRoot).toBe("/var/lib/criu-gateway/images");
    expect(config.unixSocketMode).toBe(0o600);
  });

  test("given settings override the defaults and are kept as given; the rest are defaults", () => {
    const given: Partial<GatewayConfig> = {
      listen: ["unix:/tmp/gw.sock", "127.0.0.1:50051"],
      imagesRoot: "/srv/images",
      unixSocketMode: 0o660,
      logTailLines: 0,
      vetoGraceMs: 1,
      shutdownGraceMs: 0,
      maxReceiveMessageBytes: 1024,
      logLevel: "debug",
      criuBin: "/opt/criu/bin/criu",
      insecure: true,
      policyFile: "/etc/criu-gateway/policy.json",
      unixSocketOwner: 0,
      unixSocketGroup: 100,
    };
    expect(resolveConfig(given)).toEqual({ ...defaultConfig(), ...given });
  });

  test("resolving does not change the object it was given", () => {
    const given: Partial<GatewayConfig> = { listen: ["127.0.0.1:1"], insecure: true };
    resolveConfig(given);
    expect(given).toEqual({ listen: ["127.0.0.1:1"], insecure: true });
  });
});

describe("limits sized to the machine", () => {
  test("CRIU workers: twice the CPUs, at least 2, and 16 waiting per worker; CRIU logs at level 4", () => {
    const config = resolveConfig({});
    expect(config.maxConcurrentOperations).toBe(Math.max(2, 2 * availableParallelism()));
    expect(config.maxQueuedOperations).toBe(16 * config.maxConcurrentOperations);
    expect(config.criuLogLevel).toBe(4);
  });
});

describe("invalid settings name themselves first", () => {
  test.each<[string, Partial<GatewayConfig>]>([
    ["images-root", { imagesRoot: "images" }],
    ["images-root", { imagesRoot: "./var/lib/images" }],
    ["images-root", { imagesRoot: "" }],
    ["listen", { listen: [] }],
    ["listen", { listen: [""] }],
    ["listen", { listen: ["localhost"] }],
    ["listen", { listen: ["50051"] }],
    ["listen", { listen: [":50051"] }],
    ["listen", { listen: ["localhost:"] }],
    ["listen", { listen: ["localhost:port"] }],
    ["listen", { listen: ["localhost:123456"] }],
    ["listen", { listen: ["http://localhost:50051"] }],
    ["listen", { listen: ["::1:50051"] }],
    ["listen", { listen: ["unix:"] }],
    ["listen", { listen: ["unix:run/gw.sock"] }],
    ["listen", { listen: ["unix:./gw.sock"] }],
    ["listen", { listen: ["localhost:70000"] }],
    ["listen", { listen: ["0.0.0.0:50051"] }],
    ["listen", { listen: ["10.1.2.3:1"] }],
    ["listen", { listen: ["[::]:50051"] }],
    ["listen", { listen: ["example.com:50051"] }],
    ["listen", { listen: ["127.0.0.1.example.com:50051"] }],
    ["listen", { listen: ["unix:/run/ok.sock", "0.0.0.0:50051"] }],
    ["log-level", { logLevel: "verbose" as string as LogLevel }],
    ["log-level", { logLevel: "" as string as LogLevel }],
    ["log-tail-lines", { logTailLines: -1 }],
    ["log-tail-lines", { logTailLines: 1.5 }],
    ["log-tail-lines", { logTailLines: Number.NaN }],
    ["veto-grace-ms", { vetoGraceMs: 0 }],
    ["veto-grace-ms", { vetoGraceMs: -1000 }],
    ["shutdown-grace-ms", { shutdownGraceMs: -1 }],
    ["max-receive-message-bytes", { maxReceiveMessageBytes: -1 }],
    ["max-receive-message-bytes", { maxReceiveMessageBytes: 1023 }],
    ["unix-socket-mode", { unixSocketMode: -1 }],
    ["unix-socket-mode", { unixSocketMode: 0o1000 }],
    ["unix-socket-mode", { unixSocketMode: 0.5 }],
    ["unix-socket-owner", { unixSocketOwner: -1 }],
    ["unix-socket-group", { unixSocketGroup: 1.5 }],
    ["tls-reload-interval-ms", { tlsReloadIntervalMs: -1 }],
    ["max-concurrent-operations", { maxConcurrentOperations: 0 }],
    ["max-queued-operations", { maxQueuedOperations: -1 }],
    ["criu-log-level", { criuLogLevel: 5 }],
    ["criu-log-level", { criuLogLevel: -1 }],
    ["warm-workers", { warmWorkers: -1 }],
    ["warm-workers", { warmWorkers: 1.5 }],
    ["warm-worker-idle-ms", { warmWorkerIdleMs: 0 }],
    ["insecure", { insecure: true, tls: { certFile: "/c.pem", keyFile: "/k.pem", clientCaFile: undefined } }],
  ])("%s: %j", (setting, given) => {
    const err = configError(() => resolveConfig(given));
    expect(err.message.startsWith(`${setting}: `)).toBe(true);
  });

  test("a port out of range says so", () => {
    expect(configError(() => resolveConfig({ listen: ["127.0.0.1:70000"] })).message).toMatch(
      /^listen: .*70000.*out of range/,
    );
  });

  test("TCP without TLS is refused unless --insecure, and then on loopback only", () => {
    for (const address of ["0.0.0.0:50051", "10.1.2.3:1", "[::]:1", "[2001:db8::1]:1", "127.0.0.1:1"]) {
      expect(configError(() => resolveConfig({ listen: [address] })).message).toMatch(/^listen: .*needs TLS/);
    }
    for (const address of ["0.0.0.0:50051", "10.1.2.3:1", "[::]:1", "[2001:db8::1]:1", "gw.example:1"]) {
      expect(configError(() => resolveConfig({ listen: [address], insecure: true })).message).toMatch(
        /^listen: .*loopback only/,
      );
    }
  });

  test("with TLS, TCP may listen on any address", () => {
    const tls = { certFile: "/etc/gw/cert.pem", keyFile: "/etc/gw/key.pem", clientCaFile: "/etc/gw/ca.pem" };
    for (const address of ["0.0.0.0:50051", "[::]:1", "gw.example:443"]) {
      expect(resolveConfig({ listen: [address], tls }).listen).toEqual([address]);
    }
  });
});

describe("socket owner and group names", () => {
  test("names resolve through /etc/passwd and /etc/group; numbers pass as they are", () => {
    expect(lookupUser("root")).toBe(0);
    expect(lookupGroup("root")).toBe(0);
    expect(lookupUser("4242")).toBe(4242);
    expect(lookupGroup("77")).toBe(77);
  });

  test("an unknown name names the setting and the file", () => {
    expect(configError(() => lookupUser("no-such-user-here")).message).toMatch(
      /^unix-socket-owner: no user named "no-such-user-here" in \/etc\/passwd/,
    );
    expect(configError(() => lookupGroup("no-such-group-here")).message).toMatch(
      /^unix-socket-group: no group named "no-such-group-here" in \/etc\/group/,
    );
  });
});

describe("listen addresses", () => {
  test.each<[string, ReturnType<typeof parseListenAddress>]>([
    ["unix:/run/criu-gateway/gateway.sock", { kind: "unix", path: "/run/criu-gateway/gateway.sock" }],
    ["127.0.0.1:0", { kind: "tcp", host: "127.0.0.1", port: 0 }],
    ["127.0.0.1:65535", { kind: "tcp", host: "127.0.0.1", port: 65535 }],
    ["127.8.9.10:50051", { kind: "tcp", host: "127.8.9.10", port: 50051 }],
    ["localhost:50051", { kind: "tcp", host: "localhost", port: 50051 }],
    ["[::1]:50051", { kind: "tcp", host: "::1", port: 50051 }],
  ])("%s is accepted", (address, parsed) => {
    expect(parseListenAddress(address)).toEqual(parsed);
    expect(resolveConfig({ listen: [address], insecure: true }).listen).toEqual([address]);
  });
});
