// The criu-gateway command: `serve` runs the gateway; the other commands call a running one.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type ChannelCredentials,
  type ChannelOptions,
  credentials,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  type Checkpoint,
  CheckpointKind,
  CheckpointLogKind,
  type CheckResponse,
  type CpuinfoCheckResponse,
  type CpuinfoDumpResponse,
  CriuOptions,
  CriuServiceClient,
  type DeleteCheckpointResponse,
  type DumpResponse,
  type Event,
  type ExportImagesResponse,
  type FeatureCheckResponse,
  type GetCheckpointLogResponse,
  type GetCheckpointResponse,
  type ImportImagesResponse,
  type ListCheckpointsResponse,
  type ListPageServersResponse,
  OperationKind,
  type PreDumpResponse,
  type RestoreResponse,
  type StartPageServerResponse,
  type StopPageServerResponse,
  type SubscribeResponse,
  type VersionResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import {
  ConfigError,
  DEFAULT_ADDRESS,
  type GatewayConfig,
  lookupGroup,
  lookupUser,
  resolveConfig,
} from "../config.js";
import { PolicyError } from "../domain/policy.js";
import { errorDetailOf } from "../grpc/errorStatus.js";
import { loadPolicy, startGateway } from "../grpc/server.js";
import { createLogger, type LogLevel } from "../log.js";

const USAGE = `Usage: criu-gateway <command> [options]

Run the gateway:
  serve [--listen unix:PATH|HOST:PORT]... [--images-root DIR] [--criu PATH] [--log-level LEVEL]
        [--policy FILE] [--audit-log FILE]
        [--unix-socket-mode OCTAL] [--unix-socket-owner USER] [--unix-socket-group GROUP]
        [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--tls-reload-interval-ms MS]
        [--insecure]
        [--idle-worker-ms MS] [--warm-workers N] [--warm-worker-idle-ms MS]
        defaults: --listen ${DEFAULT_ADDRESS} --images-root /var/lib/criu-gateway/images
        TCP listeners need TLS; --tls-client-ca makes it mutual TLS, the certificate naming the
        caller. --insecure allows plain TCP on loopback only, for anonymous callers. Without
        --policy, root on a unix socket is admin and nobody else may do anything (docs/security.md).
        SIGHUP re-reads the policy and the TLS files.
  policy-check FILE            validate a policy file and print the grants it defines

Call a running gateway (--addr ADDR or $CRIU_GATEWAY_ADDR, default ${DEFAULT_ADDRESS}; --json for JSON output;
over TLS with --tls-ca FILE, and for mutual TLS --tls-cert FILE --tls-key FILE; --tls-server-name NAME):
  version                      CRIU's and the gateway's versions
  check                        whether the kernel supports checkpoint/restore
  features                     which optional features work (mem_track, lazy_pages, pidfd_store)
  dump --pid N --id ID [--parent ID] [--leave-running] [--shell-job] [--tcp-established]
       [--ext-unix-sk] [--file-locks] [--link-remap] [--track-mem] [--log-level 0-4]
       [--page-server IP:PORT]
                               checkpoint the process tree rooted at N as checkpoint ID (its
                               memory to a page server with --page-server)
  pre-dump --pid N --id ID [--parent ID] [--log-level 0-4]
                               copy the memory of the tree rooted at N, which keeps running, as
                               checkpoint ID: the parent (--parent) of a later, shorter dump
  restore ID [--shell-job] [--tcp-established] [--ext-unix-sk] [--file-locks] [--log-level 0-4]
                               restore checkpoint ID; prints the restored pid
  log ID [--kind dump|restore|pre-dump|cpuinfo-dump|cpuinfo-check|page-server]
                               print CRIU's log of checkpoint ID (default: of the operation that made it)
  cpuinfo-dump ID [--log-level 0-4]
                               record this host's CPU description as checkpoint ID
  cpuinfo-check ID [--log-level 0-4]
                               check this host's CPU against the description in checkpoint ID
  watch [--kind dump|restore|pre-dump|check|feature-check|version|wait-pid|cpuinfo-dump|cpuinfo-check]...
        [--pid N] [--id ID]
                               follow every operation's events live (Ctrl-C to stop)
  page-server start ID [--address IP] [--port N] [--log-level 0-4]
                               receive a dump's memory into checkpoint ID; prints the port
  page-server stop ID          stop the page server writing into ID (nothing is published)
  page-server ls               list the running page servers
  copy-images ID --to ADDR [--into ID2]
                               copy checkpoint ID's images into the page-server checkpoint ID2
                               (default ID) of the gateway at ADDR, completing it for a restore
  ls                           list checkpoints
  get ID                       show one checkpoint
  rm ID                        delete a checkpoint
`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case "policy-check":
        return policyCheck(rest);
      case "version":
      case "check":
      case "features":
      case "dump":
      case "pre-dump":
      case "restore":
      case "log":
      case "cpuinfo-dump":
      case "cpuinfo-check":
      case "ls":
      case "get":
      case "rm":
      case "page-server":
      case "copy-images":
        return await client(command, rest);
      case "watch":
        return await watch(rest);
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : "no command given");
    }
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`criu-gateway: policy: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || err instanceof ConfigError || isParseArgsError(err)) {
      process.stderr.write(`criu-gateway: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (isServiceError(err)) {
      process.stderr.write(`criu-gateway: ${describeServiceError(err)}\n`);
      return 1;
    }
    process.stderr.write(`criu-gateway: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: "string", multiple: true },
      "images-root": { type: "string" },
      criu: { type: "string" },
      "log-level": { type: "string" },
      policy: { type: "string" },
      "audit-log": { type: "string" },
      "unix-socket-mode": { type: "string" },
      "unix-socket-owner": { type: "string" },
      "unix-socket-group": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-client-ca": { type: "string" },
      "tls-reload-interval-ms": { type: "string" },
      insecure: { type: "boolean" },
      "idle-worker-ms": { type: "string" },
      "warm-workers": { type: "string" },
      "warm-worker-idle-ms": { type: "string" },
    },
    strict: true,
  });
  const mode = values["unix-socket-mode"];
  if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode)) {
    throw new UsageError(
      `--unix-socket-mode needs an octal file mode like 0660, not ${JSON.stringify(mode)}`,
    );
  }
  const tlsCert = values["tls-cert"];
  const tlsKey = values["tls-key"];
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  if (values["tls-client-ca"] !== undefined && tlsCert === undefined) {
    throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first");
  }
  const config = resolveConfig({
    listen: values.listen,
    imagesRoot: values["images-root"],
    criuBin: values.criu,
    logLevel: values["log-level"] as LogLevel | undefined,
    policyFile: values.policy,
    auditLog: values["audit-log"],
    unixSocketMode: mode === undefined ? undefined : Number.parseInt(mode, 8),
    unixSocketOwner:
      values["unix-socket-owner"] === undefined ? undefined : lookupUser(values["unix-socket-owner"]),
    unixSocketGroup:
      values["unix-socket-group"] === undefined ? undefined : lookupGroup(values["unix-socket-group"]),
    tls:
      tlsCert === undefined || tlsKey === undefined
        ? undefined
        : { certFile: tlsCert, keyFile: tlsKey, clientCaFile: values["tls-client-ca"] },
    tlsReloadIntervalMs:
      values["tls-reload-interval-ms"] === undefined
        ? undefined
        : integer("--tls-reload-interval-ms", values["tls-reload-interval-ms"]),
    insecure: values.insecure,
    idleWorkerMs:
      values["idle-worker-ms"] === undefined
        ? undefined
        : integer("--idle-worker-ms", values["idle-worker-ms"]),
    warmWorkers:
      values["warm-workers"] === undefined ? undefined : integer("--warm-workers", values["warm-workers"]),
    warmWorkerIdleMs:
      values["warm-worker-idle-ms"] === undefined
        ? undefined
        : integer("--warm-worker-idle-ms", values["warm-worker-idle-ms"]),
  } satisfies Partial<GatewayConfig>);
  const logger = createLogger(config.logLevel);
  const gateway = await startGateway(config, logger);
  const onHangup = () => {
    logger.log("info", "SIGHUP: reloading the policy and TLS files");
    void gateway.reload();
  };
  process.on("SIGHUP", onHangup);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.log("info", "shutting down", { signal });
      gateway.shutdown().then(resolve, (err: unknown) => {
        logger.log("error", "shutdown failed", { error: err });
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  process.off("SIGHUP", onHangup);
  return 0;
}

function policyCheck(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: {} });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError("policy-check needs one policy file");
  const policy = loadPolicy(file);
  const lines = [`${file}: valid, ${policy.grants.length} grant${policy.grants.length === 1 ? "" : "s"}`];
  for (const g of policy.grants) {
    const rpcs = g.rpcs === "all" ? "all RPCs" : [...g.rpcs].join(", ") || "no RPCs";
    lines.push(`  ${g.name}: ${g.admin ? "admin" : rpcs}`);
  }
  if (policy.forwarded) {
    lines.push(
      `  forwarded identities believed in ${policy.forwarded.header} from ${policy.forwarded.trustedPeers.length} trusted peer(s)`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** Plain for unix sockets and --insecure loopback; TLS when a CA or client certificate is given. */
function channel(values: {
  "tls-ca"?: string | undefined;
  "tls-cert"?: string | undefined;
  "tls-key"?: string | undefined;
  "tls-server-name"?: string | undefined;
}): { creds: ChannelCredentials; options: ChannelOptions } {
  const env = process.env;
  const ca = values["tls-ca"] ?? env.CRIU_GATEWAY_TLS_CA;
  const cert = values["tls-cert"] ?? env.CRIU_GATEWAY_TLS_CERT;
  const key = values["tls-key"] ?? env.CRIU_GATEWAY_TLS_KEY;
  const serverName = values["tls-server-name"] ?? env.CRIU_GATEWAY_TLS_SERVER_NAME;
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  if (ca === undefined && cert === undefined) return { creds: credentials.createInsecure(), options: {} };
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag} ${path}: ${(err as Error).message}`);
    }
  };
  return {
    creds: credentials.createSsl(
      ca === undefined ? null : read("--tls-ca", ca),
      key === undefined ? null : read("--tls-key", key),
      cert === undefined ? null : read("--tls-cert", cert),
    ),
    options: serverName ? { "grpc.ssl_target_name_override": serverName } : {},
  };
}

const TLS_FLAGS = {
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-server-name": { type: "string" },
} as const;

function call<Res>(
  invoke: (callback: (err: ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function client(command: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      addr: { type: "string" },
      json: { type: "boolean" },
      pid: { type: "string" },
      id: { type: "string" },
      parent: { type: "string" },
      "leave-running": { type: "boolean" },
      "shell-job": { type: "boolean" },
      "tcp-established": { type: "boolean" },
      "ext-unix-sk": { type: "boolean" },
      "file-locks": { type: "boolean" },
      "link-remap": { type: "boolean" },
      "track-mem": { type: "boolean" },
      "log-level": { type: "string" },
      kind: { type: "string" },
      ...TLS_FLAGS,
      "page-server": { type: "string" },
      address: { type: "string" },
      port: { type: "string" },
      to: { type: "string" },
      into: { type: "string" },
    },
  });
  const addr = values.addr ?? process.env.CRIU_GATEWAY_ADDR ?? DEFAULT_ADDRESS;
  const { creds, options: channelOptions } = channel(values);
  const stub = new CriuServiceClient(addr, creds, channelOptions);
  const print = (human: string, data: unknown) =>
    process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
  const options: CriuOptions = CriuOptions.fromPartial({
    leaveRunning: values["leave-running"],
    shellJob: values["shell-job"],
    tcpEstablished: values["tcp-established"],
    extUnixSk: values["ext-unix-sk"],
    fileLocks: values["file-locks"],
    linkRemap: values["link-remap"],
    trackMem: values["track-mem"],
    logLevel: values["log-level"] === undefined ? undefined : integer("--log-level", values["log-level"]),
  });
  const oneId = (): string => {
    const id = positionals[0] ?? values.id;
    if (!id) throw new UsageError(`${command} needs a checkpoint id`);
    return id;
  };
  try {
    switch (command) {
      case "version": {
        const v = await call<VersionResponse>((cb) => stub.version({}, cb));
        const criu = [v.majorNumber, v.minorNumber, v.sublevel].filter((n) => n !== undefined).join(".");
        print(`CRIU ${criu}${v.gitid ? ` (${v.gitid})` : ""}, criu-gateway ${v.gatewayVersion}`, v);
        return 0;
      }
      case "check":
        await call<CheckResponse>((cb) => stub.check({ options: undefined }, cb));
        print("Looks good: this kernel supports checkpoint/restore.", { ok: true });
        return 0;
      case "features": {
        const f = await call<FeatureCheckResponse>((cb) => stub.featureCheck({}, cb));
        print(
          Object.entries(f)
            .map(([k, v]) => `${k}: ${v ? "yes" : "no"}`)
            .join("\n"),
          f,
        );
        return 0;
      }
      case "dump": {
        if (!values.pid) throw new UsageError("dump needs --pid N");
        if (!values.id) throw new UsageError("dump needs --id ID");
        const request = {
          checkpointId: values.id,
          parentCheckpointId: values.parent ?? "",
          options: {
            ...options,
            pid: integer("--pid", values.pid),
            ps: pageServerOption(values["page-server"]),
          },
        };
        const res = await call<DumpResponse>((cb) => stub.dump(request, cb));
        print(
          `checkpoint ${res.checkpoint?.checkpointId} written (${formatSize(res.checkpoint?.sizeBytes ?? 0)}${formatPages(res.statistics?.pagesWritten)})`,
          res,
        );
        return 0;
      }
      case "pre-dump": {
        if (!values.pid) throw new UsageError("pre-dump needs --pid N");
        if (!values.id) throw new UsageError("pre-dump needs --id ID");
        const request = {
          checkpointId: values.id,
          parentCheckpointId: values.parent ?? "",
          options: { ...options, pid: integer("--pid", values.pid) },
        };
        const res = await call<PreDumpResponse>((cb) => stub.preDump(request, cb));
        print(
          `pre-dump ${res.checkpoint?.checkpointId} written (${formatSize(res.checkpoint?.sizeBytes ?? 0)}${formatPages(res.statistics?.pagesWritten)})`,
          res,
        );
        return 0;
      }
      case "log": {
        const kind =
          values.kind === undefined
            ? CheckpointLogKind.CHECKPOINT_LOG_KIND_UNSPECIFIED
            : LOG_KINDS[values.kind];
        if (kind === undefined) {
          throw new UsageError(`--kind ${values.kind}: use one of ${Object.keys(LOG_KINDS).join(", ")}`);
        }
        const res = await call<GetCheckpointLogResponse>((cb) =>
          stub.getCheckpointLog({ checkpointId: oneId(), kind }, cb),
        );
        if (values.json) print("", res);
        else process.stdout.write(res.text);
        return 0;
      }
      case "cpuinfo-dump": {
        const res = await call<CpuinfoDumpResponse>((cb) =>
          stub.cpuinfoDump({ checkpointId: oneId(), options }, cb),
        );
        print(`this host's CPU description written as checkpoint ${res.checkpoint?.checkpointId}`, res);
        return 0;
      }
      case "cpuinfo-check": {
        const id = oneId();
        await call<CpuinfoCheckResponse>((cb) => stub.cpuinfoCheck({ checkpointId: id, options }, cb));
        print(`this host's CPU can run what checkpoint ${id} describes`, { ok: true });
        return 0;
      }
      case "restore": {
        const res = await call<RestoreResponse>((cb) => stub.restore({ checkpointId: oneId(), options }, cb));
        print(`restored as pid ${res.pid}`, res);
        return 0;
      }
      case "ls": {
        const res = await call<ListCheckpointsResponse>((cb) => stub.listCheckpoints({}, cb));
        print(res.checkpoints.length === 0 ? "no checkpoints" : formatTable(res.checkpoints), res);
        return 0;
      }
      case "get": {
        const res = await call<GetCheckpointResponse>((cb) =>
          stub.getCheckpoint({ checkpointId: oneId() }, cb),
        );
        print(formatTable(res.checkpoint ? [res.checkpoint] : []), res);
        return 0;
      }
      case "rm": {
        const id = oneId();
        await call<DeleteCheckpointResponse>((cb) => stub.deleteCheckpoint({ checkpointId: id }, cb));
        print(`checkpoint ${id} deleted`, { deleted: id });
        return 0;
      }
      case "page-server": {
        const [action, id] = positionals;
        if (action === "ls") {
          const res = await call<ListPageServersResponse>((cb) => stub.listPageServers({}, cb));
          print(
            res.pageServers.length === 0
              ? "no page servers"
              : res.pageServers
                  .map((p) => `${p.checkpointId}\tpid ${p.pid}\t${p.address || "*"}:${p.port}`)
                  .join("\n"),
            res,
          );
          return 0;
        }
        if (!id) throw new UsageError("page-server start|stop needs a checkpoint id");
        if (action === "start") {
          const res = await call<StartPageServerResponse>((cb) =>
            stub.startPageServer(
              {
                checkpointId: id,
                address: values.address ?? "",
                port: values.port === undefined ? 0 : integer("--port", values.port),
                options,
              },
              cb,
            ),
          );
          const ps = res.pageServer;
          print(
            `page server for checkpoint ${id} listening on ${ps?.address || "*"}:${ps?.port} (pid ${ps?.pid})`,
            res,
          );
          return 0;
        }
        if (action === "stop") {
          await call<StopPageServerResponse>((cb) => stub.stopPageServer({ checkpointId: id }, cb));
          print(`page server for checkpoint ${id} stopped`, { stopped: id });
          return 0;
        }
        throw new UsageError("page-server takes start, stop or ls");
      }
      case "copy-images": {
        if (!values.to) throw new UsageError("copy-images needs --to ADDR (the page server's gateway)");
        const id = oneId();
        const exported = await call<ExportImagesResponse>((cb) =>
          stub.exportImages({ checkpointId: id }, cb),
        );
        const target = new CriuServiceClient(values.to, creds, channelOptions);
        try {
          const res = await call<ImportImagesResponse>((cb) =>
            target.importImages(
              {
                checkpointId: values.into ?? id,
                files: exported.files,
                rootPid: exported.checkpoint?.rootPid ?? 0,
              },
              cb,
            ),
          );
          print(
            `${exported.files.length} images copied into checkpoint ${res.checkpoint?.checkpointId}`,
            res,
          );
        } finally {
          target.close();
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } finally {
    stub.close();
  }
}

/** --page-server IP:PORT (or [IPv6]:PORT) as options.ps. */
function pageServerOption(value: string | undefined): CriuOptions["ps"] {
  if (value === undefined) return undefined;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (!match) throw new UsageError(`--page-server ${value}: use IP:PORT`);
  return { address: match[1] ?? match[2], port: Number(match[3]) };
}

const KINDS: Record<string, OperationKind> = {
  dump: OperationKind.OPERATION_KIND_DUMP,
  restore: OperationKind.OPERATION_KIND_RESTORE,
  check: OperationKind.OPERATION_KIND_CHECK,
  "feature-check": OperationKind.OPERATION_KIND_FEATURE_CHECK,
  version: OperationKind.OPERATION_KIND_VERSION,
  "pre-dump": OperationKind.OPERATION_KIND_PRE_DUMP,
  "wait-pid": OperationKind.OPERATION_KIND_WAIT_PID,
  "cpuinfo-dump": OperationKind.OPERATION_KIND_CPUINFO_DUMP,
  "cpuinfo-check": OperationKind.OPERATION_KIND_CPUINFO_CHECK,
  "page-server": OperationKind.OPERATION_KIND_PAGE_SERVER,
  "iterative-dump": OperationKind.OPERATION_KIND_ITERATIVE_DUMP,
};

const LOG_KINDS: Record<string, CheckpointLogKind> = {
  dump: CheckpointLogKind.CHECKPOINT_LOG_KIND_DUMP,
  restore: CheckpointLogKind.CHECKPOINT_LOG_KIND_RESTORE,
  "pre-dump": CheckpointLogKind.CHECKPOINT_LOG_KIND_PRE_DUMP,
  "cpuinfo-dump": CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_DUMP,
  "cpuinfo-check": CheckpointLogKind.CHECKPOINT_LOG_KIND_CPUINFO_CHECK,
  "page-server": CheckpointLogKind.CHECKPOINT_LOG_KIND_PAGE_SERVER,
};

const CHECKPOINT_KINDS: Partial<Record<CheckpointKind, string>> = {
  [CheckpointKind.CHECKPOINT_KIND_DUMP]: "dump",
  [CheckpointKind.CHECKPOINT_KIND_PRE_DUMP]: "pre-dump",
  [CheckpointKind.CHECKPOINT_KIND_CPUINFO]: "cpuinfo",
  [CheckpointKind.CHECKPOINT_KIND_PAGES]: "pages",
};

/** Follows the Subscribe stream, one line per event, until interrupted or the gateway stops. */
async function watch(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      addr: { type: "string" },
      json: { type: "boolean" },
      kind: { type: "string", multiple: true },
      pid: { type: "string" },
      id: { type: "string" },
      ...TLS_FLAGS,
    },
  });
  const kinds = (values.kind ?? []).map((k) => {
    const kind = KINDS[k];
    if (kind === undefined) throw new UsageError(`--kind ${k}: use one of ${Object.keys(KINDS).join(", ")}`);
    return kind;
  });
  const addr = values.addr ?? process.env.CRIU_GATEWAY_ADDR ?? DEFAULT_ADDRESS;
  const { creds, options: channelOptions } = channel(values);
  const stub = new CriuServiceClient(addr, creds, channelOptions);
  const stream = stub.subscribe({
    kinds,
    pid: values.pid === undefined ? 0 : integer("--pid", values.pid),
    checkpointId: values.id ?? "",
  });
  process.once("SIGINT", () => stream.cancel());
  return new Promise<number>((resolve, reject) => {
    stream.on("data", (res: SubscribeResponse) => {
      const e = res.event;
      if (!e) return;
      process.stdout.write(values.json ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
    });
    stream.on("error", (err: ServiceError) => {
      stub.close();
      if (err.code === status.CANCELLED) resolve(0);
      else reject(err);
    });
    stream.on("end", () => {
      stub.close();
      resolve(0);
    });
  });
}

function formatEvent(e: Event): string {
  const head = `${e.time?.toISOString() ?? ""} ${e.operationId}`;
  if (e.started) {
    const kind = Object.keys(KINDS).find((k) => KINDS[k] === e.started?.kind) ?? "?";
    const target = [
      e.started.pid ? `pid ${e.started.pid}` : "",
      e.started.checkpointId ? `checkpoint ${e.started.checkpointId}` : "",
    ]
      .filter(Boolean)
      .join(", ");
    return `${head} started ${kind}${target ? ` (${target})` : ""} by ${e.started.caller}${e.started.interactive ? ", interactive" : ""}`;
  }
  if (e.callback)
    return `${head} callback #${e.callback.sequence} ${e.callback.script}${e.callback.pid ? ` pid ${e.callback.pid}` : ""}`;
  if (e.callbackAnswered) {
    const a = e.callbackAnswered;
    return `${head} answered #${a.sequence} ${a.script}: ${a.success ? "success" : "failure"} by ${a.answeredBy}`;
  }
  if (e.finished) {
    const f = e.finished;
    const outcome = f.code === 0 ? "OK" : `${status[f.code] ?? f.code}: ${f.message}`;
    return `${head} finished in ${f.durationMs} ms: ${outcome}${f.restoredPid ? ` (restored pid ${f.restoredPid})` : ""}`;
  }
  if (e.eventsLost) return `${head} (${e.eventsLost.count} events lost: this watcher fell behind)`;
  return head;
}

function integer(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} needs a whole number, not ${JSON.stringify(text)}`);
  return n;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function formatPages(pages: number | undefined): string {
  return pages === undefined ? "" : `, ${pages} pages of memory`;
}

function formatTable(checkpoints: Checkpoint[]): string {
  const rows = [["ID", "KIND", "CREATED", "SIZE", "PID", "PARENT"]];
  for (const c of checkpoints) {
    rows.push([
      c.checkpointId,
      CHECKPOINT_KINDS[c.kind] ?? "?",
      c.createTime?.toISOString() ?? "",
      formatSize(c.sizeBytes),
      String(c.rootPid),
      c.parentCheckpointId || "-",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err && "metadata" in err;
}

function describeServiceError(err: ServiceError): string {
  const lines = [`${status[err.code] ?? err.code}: ${err.details || err.message}`];
  const detail = errorDetailOf(err);
  if (detail) {
    if (detail.crErrno) lines.push(`  cr_errno: ${detail.crErrno}`);
    if (detail.workerExit) lines.push(`  worker: ${detail.workerExit}`);
    if (detail.logTail.length > 0)
      lines.push("  CRIU's log ends with:", ...detail.logTail.map((l) => `    ${l}`));
  }
  return lines.join("\n");
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}
