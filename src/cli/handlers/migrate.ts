// migrate: Migrate's stream as a progress line on a terminal, then the pid on the target.
import type { ServiceError } from "@grpc/grpc-js";
import {
  CriuOptions,
  type CriuServiceClient,
  type MigrateRequest,
  MigrateResponse,
  MigrationMode,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { MIGRATE_OPTIONS } from "../commands/migrate.js";
import { withClient } from "../connection.js";
import { formatSize, print, protoJson } from "../output.js";
import { integer, optionalInteger } from "../parse.js";
import { type Progress, startProgress } from "../progress.js";

const MODES: Record<string, MigrationMode> = {
  "stop-and-copy": MigrationMode.MIGRATION_MODE_STOP_AND_COPY,
  "post-copy": MigrationMode.MIGRATION_MODE_POST_COPY,
  "pre-copy": MigrationMode.MIGRATION_MODE_PRE_COPY,
};

export function migrate({ values }: Args<typeof MIGRATE_OPTIONS>): Promise<number> {
  const pid = integer("--pid", values.pid);
  const resources = {
    shellJob: values["shell-job"],
    tcpEstablished: values["tcp-established"],
    extUnixSk: values["ext-unix-sk"],
    fileLocks: values["file-locks"],
    logLevel: optionalInteger("--log-level", values["log-level"]),
  };
  const request: MigrateRequest = {
    pid,
    target: values.to,
    mode: MODES[values.mode ?? ""] ?? MigrationMode.MIGRATION_MODE_UNSPECIFIED,
    dumpOptions: CriuOptions.fromPartial(resources),
    restoreOptions: CriuOptions.fromPartial(resources),
    checkpointId: values.id ?? "",
  };
  return withClient(values, async (client) => {
    const progress = startProgress(`moving pid ${pid} to ${values.to}`, { enabled: !values.json });
    let done: MigrateResponse["done"];
    try {
      done = await follow(client, request, progress);
    } finally {
      progress.done();
    }
    const stats = done?.statistics;
    const frozenMs = ((stats?.frozenTimeUs ?? 0) / 1000).toFixed(1);
    const lazy = stats?.lazyPages ? `, then ${stats.lazyPages} pages of memory` : "";
    print(
      values.json,
      `pid ${pid} now runs on ${values.to} as pid ${done?.targetPid} (frozen ${frozenMs} ms, ${formatSize(stats?.imageBytes ?? 0)} of images${lazy})`,
      () => protoJson(MigrateResponse, { done }),
    );
    return 0;
  });
}

/** Reads the stream to its end, naming each step on the progress line; resolves with `done`. */
function follow(
  client: CriuServiceClient,
  request: MigrateRequest,
  progress: Progress,
): Promise<MigrateResponse["done"]> {
  return new Promise((resolve, reject) => {
    let done: MigrateResponse["done"];
    const call = client.migrate(request);
    call.on("data", (m: MigrateResponse) => {
      if (m.frozen) progress.stage(`frozen (${m.frozen.pids.length} processes), sending images`);
      if (m.imagesSent) progress.stage(`${formatSize(m.imagesSent.bytes)} of images sent, restoring`);
      if (m.restored) progress.stage(`restored as pid ${m.restored.targetPid} on the target`);
      if (m.memory) progress.stage(`memory: ${m.memory.pagesMoved} of ${m.memory.pagesTotal} pages moved`);
      if (m.sourceReleased) progress.stage("released on this host");
      if (m.processLost) progress.stage(`lost: ${m.processLost.reason}`);
      if (m.done) done = m.done;
    });
    call.on("error", (err: ServiceError) => reject(err));
    call.on("end", () => resolve(done));
  });
}
