// serve and policy-check: the gateway's own side, loaded only by these two commands.

import { loadPolicy } from "../../app/loadPolicy.js";
import { startGateway } from "../../app/startGateway.js";
import { PolicyError } from "../../auth/parsePolicy.js";
import { type GatewayConfig, lookupGroup, lookupUser, resolveConfig } from "../../config.js";
import { createLogger, type LogLevel } from "../../log.js";
import { notifyReady, notifyStopping } from "../../systemd/notify.js";
import { type Args, CommandError, UsageError } from "../command.js";
import type { SERVE_OPTIONS } from "../commands/serve.js";
import { optionalInteger } from "../parse.js";

type ServeOptions = typeof SERVE_OPTIONS;

export async function serve({ values }: Args<ServeOptions>): Promise<number> {
  const config = resolveConfig(configFrom(values));
  const logger = createLogger(config.logLevel);
  const gateway = await policyErrors(() => startGateway(config, logger));
  notifyReady(gateway.addresses, logger);
  const onHangup = () => {
    logger.log("info", "SIGHUP: reloading the policy and TLS files");
    void gateway.reload();
  };
  process.on("SIGHUP", onHangup);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.log("info", "shutting down", { signal });
      notifyStopping(logger);
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

/** The command line as a partial config; resolveConfig applies the defaults and checks the rest. */
function configFrom(values: Args<ServeOptions>["values"]): Partial<GatewayConfig> {
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
  const owner = values["unix-socket-owner"];
  const group = values["unix-socket-group"];
  return {
    listen: values.listen,
    imagesRoot: values["images-root"],
    criuBin: values.criu,
    logLevel: values["log-level"] as LogLevel | undefined,
    policyFile: values.policy,
    auditLog: values["audit-log"],
    unixSocketMode: mode === undefined ? undefined : Number.parseInt(mode, 8),
    unixSocketOwner: owner === undefined ? undefined : lookupUser(owner),
    unixSocketGroup: group === undefined ? undefined : lookupGroup(group),
    tls:
      tlsCert === undefined || tlsKey === undefined
        ? undefined
        : { certFile: tlsCert, keyFile: tlsKey, clientCaFile: values["tls-client-ca"] },
    tlsReloadIntervalMs: optionalInteger("--tls-reload-interval-ms", values["tls-reload-interval-ms"]),
    insecure: values.insecure,
    idleWorkerMs: optionalInteger("--idle-worker-ms", values["idle-worker-ms"]),
    shutdownGraceMs: optionalInteger("--shutdown-grace-ms", values["shutdown-grace-ms"]),
    metricsListen: values["metrics-listen"],
    maxConcurrentOperations: optionalInteger(
      "--max-concurrent-operations",
      values["max-concurrent-operations"],
    ),
    maxQueuedOperations: optionalInteger("--max-queued-operations", values["max-queued-operations"]),
    criuLogLevel: optionalInteger("--criu-log-level", values["criu-log-level"]),
    ...pushSettings(values),
    warmWorkers: optionalInteger("--warm-workers", values["warm-workers"]),
    warmWorkerIdleMs: optionalInteger("--warm-worker-idle-ms", values["warm-worker-idle-ms"]),
  } satisfies Partial<GatewayConfig>;
}

/** The push settings of `serve`'s options; resolveConfig validates them. */
function pushSettings(values: Args<ServeOptions>["values"]): Pick<GatewayConfig, "pushTargets" | "pushTls"> {
  const ca = values["push-tls-ca"];
  return {
    pushTargets: values["push-target"] ?? [],
    pushTls:
      ca === undefined
        ? undefined
        : {
            caFile: ca,
            certFile: values["push-tls-cert"],
            keyFile: values["push-tls-key"],
            serverName: values["push-tls-server-name"],
          },
  };
}

export async function policyCheck({ positionals }: { positionals: readonly string[] }): Promise<number> {
  const file = positionals[0]!;
  const policy = await policyErrors(async () => loadPolicy(file));
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

/** A mistake in the policy file: its place and what is wrong, exit status 2, no usage text. */
async function policyErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof PolicyError) throw new CommandError(`policy: ${err.message}`, 2);
    throw err;
  }
}
