// Option sets several commands declare. Each command lists the sets it takes; none takes them all.
import { DEFAULT_ADDRESS } from "../config.js";
import { LOG_KINDS, OPERATION_KINDS } from "./kinds.js";

/** How a client command reaches the gateway. */
export const CONNECTION = {
  addr: {
    type: "string",
    value: "ADDR",
    help: `the gateway: unix:PATH or HOST:PORT (default $CRIU_GATEWAY_ADDR, else ${DEFAULT_ADDRESS})`,
  },
  "tls-ca": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "TLS: the CA that signed the gateway's certificate ($CRIU_GATEWAY_TLS_CA)",
  },
  "tls-cert": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "mutual TLS: this client's certificate ($CRIU_GATEWAY_TLS_CERT)",
  },
  "tls-key": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "mutual TLS: this client's key ($CRIU_GATEWAY_TLS_KEY)",
  },
  "tls-server-name": {
    type: "string",
    value: "NAME",
    help: "the name to expect in the gateway's certificate ($CRIU_GATEWAY_TLS_SERVER_NAME)",
  },
} as const;

/** A client command whose answer can be printed as JSON. */
export const JSON_OUTPUT = {
  json: { type: "boolean", help: "print the answer as proto3 JSON" },
} as const;

export const CRIU_LOG_LEVEL = {
  "log-level": { type: "string", value: "0-4", help: "CRIU's log verbosity" },
} as const;

/** What a dump or restore of a process tree with these resources needs. */
export const TREE_RESOURCES = {
  "shell-job": { type: "boolean", help: "the tree is a shell job (has a controlling terminal)" },
  "tcp-established": { type: "boolean", help: "checkpoint/restore established TCP connections" },
  "ext-unix-sk": { type: "boolean", help: "allow unix sockets connected outside the tree" },
  "file-locks": { type: "boolean", help: "checkpoint/restore file locks" },
} as const;

export const OPERATION_KIND_NAMES = Object.keys(OPERATION_KINDS);
export const LOG_KIND_NAMES = Object.keys(LOG_KINDS);
