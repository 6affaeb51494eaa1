// dump and pre-dump: checkpoint a running tree, with progress on a terminal.
import {
  CriuOptions,
  type CriuServiceClient,
  DumpResponse,
  Durability,
  OperationKind,
  PreDumpResponse,
  type SubscribeResponse,
} from "../../../gen/criu/gateway/v1/gateway.js";
import { type Args, UsageError } from "../command.js";
import type { DUMP_OPTIONS, PRE_DUMP_OPTIONS } from "../commands/dump.js";
import { call, withClient } from "../connection.js";
import { formatSize, print, protoJson } from "../output.js";
import { integer, optionalInteger } from "../parse.js";
import { type Progress, startProgress } from "../progress.js";

/** --durability as the API spells it (unset: the gateway's default, FSYNC). */
function durabilityOf(name: string | undefined): Durability {
  if (name === "none") return Durability.DURABILITY_NONE;
  return name === "fsync" ? Durability.DURABILITY_FSYNC : Durability.DURABILITY_UNSPECIFIED;
}

export function dump({ values }: Args<typeof DUMP_OPTIONS>): Promise<number> {
  const pid = integer("--pid", values.pid);
  const request = {
    checkpointId: values.id,
    parentCheckpointId: values.parent ?? "",
    durability: durabilityOf(values.durability),
    options: CriuOptions.fromPartial({
      pid,
      leaveRunning: values["leave-running"],
      shellJob: values["shell-job"],
      tcpEstablished: values["tcp-established"],
      extUnixSk: values["ext-unix-sk"],
      fileLocks: values["file-locks"],
      linkRemap: values["link-remap"],
      trackMem: values["track-mem"],
      logLevel: optionalInteger("--log-level", values["log-level"]),
      ps: pageServerOption(values["page-server"]),
    }),
  };
  return withClient(values, async (client) => {
    const res = await withProgress(client, `dumping pid ${pid} as ${values.id}`, values.json, pid, () =>
      call<DumpResponse>((cb) => client.dump(request, cb)),
    );
    print(values.json, `checkpoint ${res.checkpoint?.checkpointId} written (${written(res)})`, () =>
      protoJson(DumpResponse, res),
    );
    return 0;
  });
}

export function preDump({ values }: Args<typeof PRE_DUMP_OPTIONS>): Promise<number> {
  const pid = integer("--pid", values.pid);
  const request = {
    checkpointId: values.id,
    parentCheckpointId: values.parent ?? "",
    durability: durabilityOf(values.durability),
    options: CriuOptions.fromPartial({ pid, logLevel: optionalInteger("--log-level", values["log-level"]) }),
  };
  return withClient(values, async (client) => {
    const res = await withProgress(client, `pre-dumping pid ${pid} as ${values.id}`, values.json, pid, () =>
      call<PreDumpResponse>((cb) => client.preDump(request, cb)),
    );
    print(values.json, `pre-dump ${res.checkpoint?.checkpointId} written (${written(res)})`, () =>
      protoJson(PreDumpResponse, res),
    );
    return 0;
  });
}

function written(res: DumpResponse | PreDumpResponse): string {
  const pages = res.statistics?.pagesWritten;
  return `${formatSize(res.checkpoint?.sizeBytes ?? 0)}${pages === undefined ? "" : `, ${pages} pages of memory`}`;
}

/**
 * Runs a dump with a progress line on a terminal. The dump RPC says nothing until it ends, so the
 * line shows the time taken and, when the caller may subscribe, CRIU's phase from its callbacks.
 */
async function withProgress<T>(
  client: CriuServiceClient,
  label: string,
  json: boolean | undefined,
  pid: number,
  work: () => Promise<T>,
): Promise<T> {
  const progress = startProgress(label, { enabled: !json });
  const stopFollowing = followPhases(client, pid, progress);
  try {
    return await work();
  } finally {
    stopFollowing();
    progress.done();
  }
}

/** Shows each callback CRIU makes on `pid`'s dump as its phase; silent when Subscribe is refused. */
function followPhases(client: CriuServiceClient, pid: number, progress: Progress): () => void {
  if (!progress.visible) return () => {};
  const stream = client.subscribe({
    kinds: [OperationKind.OPERATION_KIND_DUMP, OperationKind.OPERATION_KIND_PRE_DUMP],
    pid,
    checkpointId: "",
  });
  stream.on("data", (res: SubscribeResponse) => {
    const script = res.event?.callback?.script;
    if (script) progress.stage(`CRIU: ${script}`);
  });
  // Progress is a courtesy: a refused or broken subscription must not fail the dump.
  stream.on("error", () => {});
  return () => stream.cancel();
}

/** --page-server IP:PORT (or [IPv6]:PORT) as options.ps. */
function pageServerOption(value: string | undefined): CriuOptions["ps"] {
  if (value === undefined) return undefined;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (!match) throw new UsageError(`--page-server ${value}: use IP:PORT`);
  return { address: match[1] ?? match[2], port: Number(match[3]) };
}
