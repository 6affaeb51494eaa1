// version, check, features: questions about the gateway's host.
import {
  type CheckResponse,
  FeatureCheckResponse,
  VersionResponse,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type { PROBE_OPTIONS } from "../commands/probes.js";
import { call, withClient } from "../connection.js";
import { print, protoJson } from "../output.js";

type ProbeArgs = Args<typeof PROBE_OPTIONS>;

export function version({ values }: ProbeArgs): Promise<number> {
  return withClient(values, async (client) => {
    const v = await call<VersionResponse>((cb) => client.version({}, cb));
    const criu = [v.majorNumber, v.minorNumber, v.sublevel].filter((n) => n !== undefined).join(".");
    print(
      values.json,
      `CRIU ${criu}${v.gitid ? ` (${v.gitid})` : ""}, criu-gateway ${v.gatewayVersion}`,
      () => protoJson(VersionResponse, v),
    );
    return 0;
  });
}

export function check({ values }: ProbeArgs): Promise<number> {
  return withClient(values, async (client) => {
    await call<CheckResponse>((cb) => client.check({ options: undefined }, cb));
    print(values.json, "Looks good: this kernel supports checkpoint/restore.", () => ({ ok: true }));
    return 0;
  });
}

export function features({ values }: ProbeArgs): Promise<number> {
  return withClient(values, async (client) => {
    const f = await call<FeatureCheckResponse>((cb) => client.featureCheck({}, cb));
    const human = Object.entries(f)
      .map(([k, v]) => `${k}: ${v ? "yes" : "no"}`)
      .join("\n");
    print(values.json, human, () => protoJson(FeatureCheckResponse, f));
    return 0;
  });
}
