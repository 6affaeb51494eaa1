// watch: the Subscribe stream, one line per event, until interrupted or the gateway stops.
import { type ServiceError, status } from "@grpc/grpc-js";
import {
  Event,
  OperationKind,
  operationKindToJSON,
  type SubscribeResponse,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { WATCH_OPTIONS } from "../commands/watch.js";
import { connect } from "../connection.js";
import { cliName, OPERATION_KINDS } from "../kinds.js";
import { protoJson } from "../output.js";
import { integer } from "../parse.js";

export function watch({ values }: Args<typeof WATCH_OPTIONS>): Promise<number> {
  const kinds = (values.kind ?? []).map(
    (k) => OperationKind[OPERATION_KINDS[k as keyof typeof OPERATION_KINDS]],
  );
  const pid = values.pid === undefined ? 0 : integer("--pid", values.pid);
  const client = connect(values);
  const stream = client.subscribe({ kinds, pid, checkpointId: values.id ?? "" });
  process.once("SIGINT", () => stream.cancel());
  return new Promise<number>((resolve, reject) => {
    stream.on("data", (res: SubscribeResponse) => {
      const e = res.event;
      if (!e) return;
      process.stdout.write(`${values.json ? JSON.stringify(protoJson(Event, e)) : formatEvent(e)}\n`);
    });
    stream.on("error", (err: ServiceError) => {
      client.close();
      if (err.code === status.CANCELLED) resolve(0);
      else reject(err);
    });
    stream.on("end", () => {
      client.close();
      resolve(0);
    });
  });
}

function formatEvent(e: Event): string {
  const head = `${e.time?.toISOString() ?? ""} ${e.operationId}`;
  if (e.started) {
    const kind = cliName(OPERATION_KINDS, operationKindToJSON(e.started.kind)) ?? "?";
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
