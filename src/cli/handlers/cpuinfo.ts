// cpuinfo-dump and cpuinfo-check: this host's CPU, recorded or compared.
import {
  type CpuinfoCheckResponse,
  CpuinfoDumpResponse,
  CriuOptions,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { CPUINFO_OPTIONS } from "../commands/cpuinfo.js";
import { call, withClient } from "../connection.js";
import { print, protoJson } from "../output.js";
import { optionalInteger } from "../parse.js";

type CpuinfoArgs = Args<typeof CPUINFO_OPTIONS>;

export function cpuinfoDump({ values, positionals }: CpuinfoArgs): Promise<number> {
  const options = CriuOptions.fromPartial({ logLevel: optionalInteger("--log-level", values["log-level"]) });
  return withClient(values, async (client) => {
    const res = await call<CpuinfoDumpResponse>((cb) =>
      client.cpuinfoDump({ checkpointId: positionals[0]!, options }, cb),
    );
    print(
      values.json,
      `this host's CPU description written as checkpoint ${res.checkpoint?.checkpointId}`,
      () => protoJson(CpuinfoDumpResponse, res),
    );
    return 0;
  });
}

export function cpuinfoCheck({ values, positionals }: CpuinfoArgs): Promise<number> {
  const id = positionals[0]!;
  const options = CriuOptions.fromPartial({ logLevel: optionalInteger("--log-level", values["log-level"]) });
  return withClient(values, async (client) => {
    await call<CpuinfoCheckResponse>((cb) => client.cpuinfoCheck({ checkpointId: id, options }, cb));
    print(values.json, `this host's CPU can run what checkpoint ${id} describes`, () => ({ ok: true }));
    return 0;
  });
}
