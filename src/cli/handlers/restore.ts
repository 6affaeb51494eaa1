// restore: bring a checkpoint back to life.
import { CriuOptions, RestoreResponse } from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { RESTORE_OPTIONS } from "../commands/restore.js";
import { call, withClient } from "../connection.js";
import { print, protoJson } from "../output.js";
import { optionalInteger } from "../parse.js";

export function restore({ values, positionals }: Args<typeof RESTORE_OPTIONS>): Promise<number> {
  const options = CriuOptions.fromPartial({
    shellJob: values["shell-job"],
    tcpEstablished: values["tcp-established"],
    extUnixSk: values["ext-unix-sk"],
    fileLocks: values["file-locks"],
    logLevel: optionalInteger("--log-level", values["log-level"]),
  });
  return withClient(values, async (client) => {
    const res = await call<RestoreResponse>((cb) =>
      client.restore({ checkpointId: positionals[0]!, options }, cb),
    );
    print(values.json, `restored as pid ${res.pid}`, () => protoJson(RestoreResponse, res));
    return 0;
  });
}
