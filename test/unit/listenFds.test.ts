// Which sockets systemd's socket activation passed, from LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.
import { describe, expect, it } from "vitest";
import { parseListenAddress } from "../../src/config.js";
import { parseListenFds } from "../../src/systemd/listenFds.js";

describe("socket activation's variables", () => {
  it("give descriptors from 3 on, with their names", () => {
    const env = { LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "grpc:grpc-tls" };
    expect(parseListenFds(env, 42)).toEqual([
      { fd: 3, name: "grpc" },
      { fd: 4, name: "grpc-tls" },
    ]);
  });

  it("name the sockets 'unknown' when systemd gave no names", () => {
    expect(parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "1" }, 7)).toEqual([{ fd: 3, name: "unknown" }]);
  });

  it("are ignored when they were meant for another process (inherited from a parent)", () => {
    expect(parseListenFds({ LISTEN_PID: "41", LISTEN_FDS: "1" }, 42)).toEqual([]);
    expect(parseListenFds({ LISTEN_FDS: "1" }, 42)).toEqual([]);
    expect(parseListenFds({}, 42)).toEqual([]);
  });

  it("that contradict each other are an error naming both", () => {
    expect(() => parseListenFds({ LISTEN_PID: "1", LISTEN_FDS: "2", LISTEN_FDNAMES: "a" }, 1)).toThrow(
      "LISTEN_FDNAMES names 1 sockets but LISTEN_FDS passes 2",
    );
    expect(() => parseListenFds({ LISTEN_PID: "1", LISTEN_FDS: "two" }, 1)).toThrow(/LISTEN_FDS="two"/);
  });
});

describe("--listen systemd", () => {
  it("selects every passed socket, or those of one FileDescriptorName", () => {
    expect(parseListenAddress("systemd")).toEqual({ kind: "systemd", name: undefined });
    expect(parseListenAddress("systemd:grpc-tls")).toEqual({ kind: "systemd", name: "grpc-tls" });
    expect(() => parseListenAddress("systemd:a b")).toThrow(/not a FileDescriptorName/);
  });
});
