// Which migration modes a host can do, decided from what the kernel offers before anything runs.
import { describe, expect, it } from "vitest";
import { CriuOptions } from "../../gen/criu/gateway/v1/gateway.js";
import {
  checkModePossible,
  type HostLimits,
  PIPE_MAX_SIZE_NEEDED,
  refuseModeOwnedOptions,
} from "../../src/domain/migration/migrationMode.js";

const features =
  (over: Partial<{ memTrack: boolean; lazyPages: boolean }> = {}) =>
  async () => ({
    memTrack: false,
    lazyPages: true,
    pidfdStore: true,
    ...over,
  });
const host = (pipeMaxSize: number, capSysResource = false): HostLimits => ({
  pipeMaxSize: async () => pipeMaxSize,
  hasCapSysResource: async () => capSysResource,
});

describe("checkModePossible", () => {
  it("refuses PRE_COPY without dirty-memory tracking, naming mem_track", async () => {
    await expect(checkModePossible("pre-copy", features(), host(PIPE_MAX_SIZE_NEEDED))).rejects.toMatchObject(
      {
        code: "FAILED_PRECONDITION",
        message: expect.stringContaining("mem_track"),
      },
    );
  });

  it("lets PRE_COPY through where the kernel tracks dirty memory", async () => {
    await expect(
      checkModePossible("pre-copy", features({ memTrack: true }), host(0)),
    ).resolves.toBeUndefined();
  });

  it("refuses POST_COPY with a pipe-max-size below 4 MiB, naming the setting and its value", async () => {
    await expect(checkModePossible("post-copy", features(), host(1048576))).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      message: expect.stringMatching(/pipe-max-size.*1048576/),
    });
  });

  it("lets POST_COPY through with a small pipe-max-size when CRIU may exceed it (CAP_SYS_RESOURCE)", async () => {
    await expect(checkModePossible("post-copy", features(), host(1048576, true))).resolves.toBeUndefined();
  });

  it("refuses POST_COPY without userfaultfd", async () => {
    await expect(
      checkModePossible("post-copy", features({ lazyPages: false }), host(PIPE_MAX_SIZE_NEEDED)),
    ).rejects.toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("lazy_pages") });
  });

  it("asks nothing of the host for STOP_AND_COPY", async () => {
    const nothing: HostLimits = {
      pipeMaxSize: () => Promise.reject(new Error("not asked")),
      hasCapSysResource: () => Promise.reject(new Error("not asked")),
    };
    await expect(
      checkModePossible("stop-and-copy", () => Promise.reject(new Error("not asked")), nothing),
    ).resolves.toBeUndefined();
  });
});

describe("refuseModeOwnedOptions", () => {
  it("refuses the fields a migration sets itself, naming them", () => {
    expect(() =>
      refuseModeOwnedOptions(
        CriuOptions.fromPartial({ leaveRunning: true, lazyPages: true }),
        "dump_options",
      ),
    ).toThrow("dump_options: leaveRunning, lazyPages are set by the migration itself");
  });

  it("lets every other option through", () => {
    expect(() =>
      refuseModeOwnedOptions(
        CriuOptions.fromPartial({ tcpEstablished: true, shellJob: true }),
        "dump_options",
      ),
    ).not.toThrow();
  });
});
