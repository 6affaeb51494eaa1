// ls, get, rm, log: the gateway's checkpoints.
import {
  type Checkpoint,
  CheckpointLogKind,
  CheckpointState,
  checkpointKindToJSON,
  type DeleteCheckpointResponse,
  Durability,
  GetCheckpointLogResponse,
  GetCheckpointResponse,
  ListCheckpointsResponse,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { CHECKPOINT_OPTIONS, LOG_OPTIONS, LS_OPTIONS } from "../commands/checkpoints.js";
import { call, withClient } from "../connection.js";
import { CHECKPOINT_KINDS, LOG_KINDS } from "../kinds.js";
import { formatColumns, formatSize, print, protoJson } from "../output.js";

export function ls({ values }: Args<typeof LS_OPTIONS>): Promise<number> {
  return withClient(values, async (client) => {
    const res = await call<ListCheckpointsResponse>((cb) => client.listCheckpoints({}, cb));
    if (values.quiet && !values.json) {
      process.stdout.write(res.checkpoints.map((c) => `${c.checkpointId}\n`).join(""));
      return 0;
    }
    print(values.json, res.checkpoints.length === 0 ? "no checkpoints" : formatTable(res.checkpoints), () =>
      protoJson(ListCheckpointsResponse, res),
    );
    return 0;
  });
}

export function get({ values, positionals }: Args<typeof CHECKPOINT_OPTIONS>): Promise<number> {
  return withClient(values, async (client) => {
    const res = await call<GetCheckpointResponse>((cb) =>
      client.getCheckpoint({ checkpointId: positionals[0]! }, cb),
    );
    print(values.json, formatTable(res.checkpoint ? [res.checkpoint] : []), () =>
      protoJson(GetCheckpointResponse, res),
    );
    return 0;
  });
}

export function rm({ values, positionals }: Args<typeof CHECKPOINT_OPTIONS>): Promise<number> {
  const id = positionals[0]!;
  return withClient(values, async (client) => {
    await call<DeleteCheckpointResponse>((cb) => client.deleteCheckpoint({ checkpointId: id }, cb));
    print(values.json, `checkpoint ${id} deleted`, () => ({ deleted: id }));
    return 0;
  });
}

export function log({ values, positionals }: Args<typeof LOG_OPTIONS>): Promise<number> {
  const kind =
    values.kind === undefined
      ? CheckpointLogKind.CHECKPOINT_LOG_KIND_UNSPECIFIED
      : CheckpointLogKind[LOG_KINDS[values.kind as keyof typeof LOG_KINDS]];
  return withClient(values, async (client) => {
    const res = await call<GetCheckpointLogResponse>((cb) =>
      client.getCheckpointLog({ checkpointId: positionals[0]!, kind }, cb),
    );
    if (values.json) print(true, "", () => protoJson(GetCheckpointLogResponse, res));
    else process.stdout.write(res.text);
    return 0;
  });
}

function formatTable(checkpoints: readonly Checkpoint[]): string {
  const rows = [["ID", "KIND", "CREATED", "SIZE", "PID", "PARENT", "STATE", "FLUSHED"]];
  for (const c of checkpoints) {
    const kind = checkpointKindToJSON(c.kind) as keyof typeof CHECKPOINT_KINDS;
    rows.push([
      c.checkpointId,
      CHECKPOINT_KINDS[kind] ?? "?",
      c.createTime?.toISOString() ?? "",
      formatSize(c.sizeBytes),
      String(c.rootPid),
      c.parentCheckpointId || "-",
      // In capitals: a dump CRIU never confirmed (docs/reliability.md), worth a look before use.
      c.state === CheckpointState.CHECKPOINT_STATE_UNCONFIRMED ? "UNCONFIRMED" : "complete",
      c.durability === Durability.DURABILITY_NONE ? "no" : "yes",
    ]);
  }
  return formatColumns(rows);
}
