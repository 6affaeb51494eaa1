// The commands that run on the gateway's host: serve, and checking a policy before serving it.
import { DEFAULT_ADDRESS } from "../../config.js";
import { defineCommand } from "../command.js";

export const SERVE_OPTIONS = {
  listen: {
    type: "string",
    multiple: true,
    value: "unix:PATH|HOST:PORT|systemd[:NAME]",
    help: `where to listen (default ${DEFAULT_ADDRESS}); systemd: the socket unit's sockets`,
  },
  "images-root": {
    type: "string",
    value: "DIR",
    complete: "file",
    help: "where checkpoints are kept (default /var/lib/criu-gateway/images)",
  },
  criu: {
    type: "string",
    value: "PATH",
    complete: "file",
    help: "the criu binary (default $CRIU_BIN, else the installed one, else criu on PATH)",
  },
  "log-level": {
    type: "string",
    value: "LEVEL",
    choices: ["error", "warn", "info", "debug"],
    help: "the gateway's log verbosity",
  },
  policy: {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "who may do what (JSON; see docs/security.md)",
  },
  "audit-log": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "append one JSON line per call here",
  },
  "unix-socket-mode": { type: "string", value: "OCTAL", help: "the unix socket's file mode (default 0600)" },
  "unix-socket-owner": { type: "string", value: "USER", help: "the unix socket's owner" },
  "unix-socket-group": { type: "string", value: "GROUP", help: "the unix socket's group" },
  "tls-cert": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "the gateway's TLS certificate (with --tls-key)",
  },
  "tls-key": { type: "string", value: "FILE", complete: "file", help: "the gateway's TLS key" },
  "tls-client-ca": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "require client certificates signed by this CA (mutual TLS)",
  },
  "tls-reload-interval-ms": { type: "string", value: "MS", help: "how often to re-read the TLS files" },
  insecure: { type: "boolean", help: "allow plain TCP on loopback" },
  "idle-worker-ms": {
    type: "string",
    value: "MS",
    help: "keep a CRIU worker this long for the next probe; 0 = never",
  },
  "metrics-listen": {
    type: "string",
    value: "unix:PATH|HOST:PORT",
    help: "serve Prometheus metrics at GET /metrics here (off by default; plain HTTP on loopback or unix)",
  },
  "max-concurrent-operations": {
    type: "string",
    value: "N",
    help: "CRIU workers running at once (default twice the CPUs, at least 2); more calls queue",
  },
  "max-queued-operations": {
    type: "string",
    value: "N",
    help: "calls waiting for a worker before RESOURCE_EXHAUSTED (default 16 per worker)",
  },
  "criu-log-level": {
    type: "string",
    value: "0-4",
    help: "CRIU's log level when a call sets none (default 4: a post-mortem needs no re-run)",
  },
  "shutdown-grace-ms": {
    type: "string",
    value: "MS",
    help: "how long shutdown waits for calls in flight before cancelling them (default 30000)",
  },
  "push-target": {
    type: "string",
    multiple: true,
    value: "unix:PATH|HOST:PORT",
    help: "a gateway PushCheckpoint (criu-gateway copy) and Migrate may send to; TCP targets over TLS",
  },
  "push-tls-ca": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "pushes: the CA of the targets' certificates",
  },
  "push-tls-cert": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "pushes: the certificate this gateway shows its targets, which their policies judge",
  },
  "push-tls-key": {
    type: "string",
    value: "FILE",
    complete: "file",
    help: "pushes: the key of --push-tls-cert",
  },
  "push-tls-server-name": {
    type: "string",
    value: "NAME",
    help: "pushes: the name to expect in the targets' certificates",
  },
  "warm-workers": {
    type: "string",
    value: "N",
    help: "CRIU workers started ahead of need, waiting for calls (default 2; 0 = none)",
  },
  "warm-worker-idle-ms": {
    type: "string",
    value: "MS",
    help: "close warm workers unused this long (default 600000)",
  },
} as const;

export const serve = defineCommand({
  name: "serve",
  section: "server",
  summary: "run the gateway",
  details: `TCP listeners need TLS; --tls-client-ca makes it mutual TLS, the certificate naming the caller.
--insecure allows plain TCP on loopback only, for anonymous callers. Without --policy, root on a
unix socket is admin and nobody else may do anything (docs/security.md).
SIGHUP re-reads the policy and the TLS files. Under systemd, --listen systemd serves the sockets
of its socket unit (systemd:NAME those of one FileDescriptorName), and readiness is notified
(Type=notify): deploy/systemd/.`,
  options: SERVE_OPTIONS,
  run: async (args) => (await import("../handlers/serve.js")).serve(args),
});

export const policyCheck = defineCommand({
  name: "policy-check",
  section: "server",
  summary: "validate a policy file and print the grants it defines",
  args: [{ name: "FILE", what: "one policy file", complete: "file" }],
  options: {},
  run: async (args) => (await import("../handlers/serve.js")).policyCheck(args),
});

export const DOCTOR_OPTIONS = {
  criu: {
    type: "string",
    value: "PATH",
    complete: "file",
    help: "the criu binary to judge (default $CRIU_BIN, else the installed one, else criu on PATH)",
  },
  json: { type: "boolean", help: "print the findings as JSON" },
} as const;

export const doctor = defineCommand({
  name: "doctor",
  section: "server",
  summary: "what this host can and cannot do for CRIU, and how to fix each item",
  details: "Exits 1 when CRIU itself cannot run here. A running gateway's Check carries the same findings.",
  options: DOCTOR_OPTIONS,
  run: async (args) => (await import("../handlers/doctor.js")).doctor(args),
});
