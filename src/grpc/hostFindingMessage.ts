// The host doctor's findings as the API's HostFinding messages.
import { type HostFinding as ApiFinding, HostFindingState } from "../../gen/criu/gateway/v1/gateway.js";
import type { FindingState, HostFinding } from "../domain/hostFindings.js";

const STATE: Record<FindingState, HostFindingState> = {
  ok: HostFindingState.HOST_FINDING_STATE_OK,
  degraded: HostFindingState.HOST_FINDING_STATE_DEGRADED,
  missing: HostFindingState.HOST_FINDING_STATE_MISSING,
};

/** One finding as CheckResponse carries it. */
export function hostFindingMessage(finding: HostFinding): ApiFinding {
  return {
    name: finding.name,
    state: STATE[finding.state],
    detail: finding.detail,
    blocks: finding.blocks,
    fix: finding.fix,
  };
}
