// Checkpoints that travel: copy (gateway to gateway), export to a file, import from one.
import { defineCommand } from "../command.js";
import { CONNECTION, JSON_OUTPUT } from "../options.js";

const TRANSFER = {
  "include-parents": { type: "boolean", help: "send the checkpoint's parent chain along" },
  compression: {
    type: "string",
    value: "KIND",
    choices: ["none", "zstd"],
    help: "compression on the wire (default zstd)",
  },
} as const;

export const COPY_OPTIONS = {
  to: {
    type: "string",
    value: "ADDR",
    required: true,
    help: "the target gateway: one of the source gateway's --push-target addresses",
  },
  as: { type: "string", value: "ID2", help: "the checkpoint's id on the target (default: the same)" },
  ...TRANSFER,
  ...CONNECTION,
} as const;
export const EXPORT_OPTIONS = { ...TRANSFER, ...CONNECTION } as const;
export const IMPORT_OPTIONS = { ...JSON_OUTPUT, ...CONNECTION } as const;

export const copy = defineCommand({
  name: "copy",
  section: "client",
  summary: "have the gateway push checkpoint ID to another gateway",
  args: [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }],
  options: COPY_OPTIONS,
  run: async (args) => (await import("../handlers/transfer.js")).copy(args),
});

export const exportCheckpoint = defineCommand({
  name: "export",
  section: "client",
  summary: "write checkpoint ID (with its parent chain) to standard output",
  details: "The output is the export stream itself, length-delimited; `import` reads it back.",
  args: [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }],
  options: EXPORT_OPTIONS,
  run: async (args) => (await import("../handlers/transfer.js")).exportCheckpoint(args),
});

export const importCheckpoint = defineCommand({
  name: "import",
  section: "client",
  summary: "import an exported checkpoint from standard input, as ID2 (default: its id there)",
  args: [{ name: "ID2", what: "the new checkpoint's id", optional: true }],
  options: IMPORT_OPTIONS,
  run: async (args) => (await import("../handlers/transfer.js")).importCheckpoint(args),
});
