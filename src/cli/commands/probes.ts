// Questions about the gateway's host: CRIU's version, kernel support, optional features.
import { defineCommand } from "../command.js";
import { CONNECTION, JSON_OUTPUT } from "../options.js";

export const PROBE_OPTIONS = { ...JSON_OUTPUT, ...CONNECTION } as const;

export const version = defineCommand({
  name: "version",
  section: "client",
  summary: "CRIU's and the gateway's versions",
  options: PROBE_OPTIONS,
  run: async (args) => (await import("../handlers/probes.js")).version(args),
});

export const check = defineCommand({
  name: "check",
  section: "client",
  summary: "whether the kernel supports checkpoint/restore",
  options: PROBE_OPTIONS,
  run: async (args) => (await import("../handlers/probes.js")).check(args),
});

export const features = defineCommand({
  name: "features",
  section: "client",
  summary: "which optional features work (mem_track, lazy_pages, pidfd_store)",
  options: PROBE_OPTIONS,
  run: async (args) => (await import("../handlers/probes.js")).features(args),
});
