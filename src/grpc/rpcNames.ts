// The CriuService's RPC names, as a policy file spells them.
import { CriuServiceService } from "../../gen/criu/gateway/v1/gateway.js";

/** RPC names as the proto spells them, for the policy to check its lists against. */
export const RPC_NAMES: readonly string[] = Object.values(CriuServiceService).map((m) =>
  m.path.slice(m.path.lastIndexOf("/") + 1),
);
