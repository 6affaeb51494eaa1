// Page servers: receiving a dump's memory over the network, and completing it into a checkpoint.
import { defineCommand } from "../command.js";
import { CONNECTION, CRIU_LOG_LEVEL, JSON_OUTPUT } from "../options.js";

export const PAGE_SERVER_START_OPTIONS = {
  address: { type: "string", value: "IP", help: "the address to listen on (default all)" },
  port: { type: "string", value: "N", help: "the port to listen on (default: any free port)" },
  ...CRIU_LOG_LEVEL,
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;
export const PAGE_SERVER_OPTIONS = { ...JSON_OUTPUT, ...CONNECTION } as const;
export const COPY_IMAGES_OPTIONS = {
  to: { type: "string", value: "ADDR", required: true, help: "the gateway of the page server" },
  into: { type: "string", value: "ID2", help: "the page-server checkpoint there (default ID)" },
  ...JSON_OUTPUT,
  ...CONNECTION,
} as const;

export const pageServerStart = defineCommand({
  name: "page-server start",
  section: "client",
  summary: "receive a dump's memory into checkpoint ID; prints the port",
  args: [{ name: "ID", what: "a checkpoint id" }],
  options: PAGE_SERVER_START_OPTIONS,
  run: async (args) => (await import("../handlers/pageServer.js")).start(args),
});

export const pageServerStop = defineCommand({
  name: "page-server stop",
  section: "client",
  summary: "stop the page server writing into ID (nothing is published)",
  args: [{ name: "ID", what: "a checkpoint id" }],
  options: PAGE_SERVER_OPTIONS,
  run: async (args) => (await import("../handlers/pageServer.js")).stop(args),
});

export const pageServerLs = defineCommand({
  name: "page-server ls",
  section: "client",
  summary: "list the running page servers",
  options: PAGE_SERVER_OPTIONS,
  run: async (args) => (await import("../handlers/pageServer.js")).list(args),
});

export const copyImages = defineCommand({
  name: "copy-images",
  section: "client",
  summary: "copy checkpoint ID's images into the page-server checkpoint at ADDR",
  details: "The page-server checkpoint (--into, default ID) is then complete and can be restored there.",
  args: [{ name: "ID", what: "a checkpoint id", complete: "checkpoint" }],
  options: COPY_IMAGES_OPTIONS,
  run: async (args) => (await import("../handlers/pageServer.js")).copyImages(args),
});
