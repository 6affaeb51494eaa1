// The source gateway as a client of the target's AcceptMigration: one connection per migration,
// to a target the configuration lists, with the gateway's own TLS identity; the caller's
// certificate identity forwarded for a target whose policy trusts this gateway to speak for it.
import { Client, type ClientDuplexStream, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  type AcceptMigrationRequest,
  type AcceptMigrationResponse,
  CriuServiceService,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { Identity } from "../auth/identity.js";
import type { GatewayConfig } from "../config.js";
import type { TargetLink } from "../domain/migration/targetLink.js";
import { acceptRequestOf, fromTargetOf } from "./migrationCodec.js";
import { fromTarget, targetCredentials } from "./pushClient.js";
import { StreamQueue, writeWithDrain } from "./streamQueue.js";
import { serializeMigrationRequest } from "./transferCodec.js";
import { transferChannelOptions } from "./transferWindows.js";

export type TargetSettings = Pick<GatewayConfig, "pushTargets" | "pushTls">;

/** The header a policy's forwarded_identity reads by default (Envoy's XFCC form). */
const FORWARDED_HEADER = "x-forwarded-client-cert";

/** Opens AcceptMigration on the target, speaking for `caller` where that can be said. */
export function connectTarget(settings: TargetSettings, target: string, caller: Identity): TargetLink {
  const client = new Client(target, targetCredentials(settings, target), {
    ...transferChannelOptions,
    ...(settings.pushTls?.serverName ? { "grpc.ssl_target_name_override": settings.pushTls.serverName } : {}),
  });
  const method = CriuServiceService.acceptMigration;
  const metadata = new Metadata();
  const forwarded = forwardedValue(caller);
  if (forwarded) metadata.set(FORWARDED_HEADER, forwarded);
  const call: ClientDuplexStream<AcceptMigrationRequest, AcceptMigrationResponse> =
    client.makeBidiStreamRequest(
      method.path,
      serializeMigrationRequest,
      method.responseDeserialize,
      metadata,
    );
  // The call's error is the target's status, reported by the next read.
  const replies = new StreamQueue<AcceptMigrationResponse>(call, undefined, (err) =>
    fromTarget(target, err as ServiceError),
  );
  return {
    send: (message) =>
      writeWithDrain(call, acceptRequestOf(message)).catch(async (err: unknown) => {
        // A write fails because the call ended: the target's status says why.
        await replies.next();
        throw err;
      }),
    async next() {
      const reply = await replies.next();
      return reply && fromTargetOf(reply);
    },
    abort() {
      call.cancel();
      client.close();
    },
    close() {
      call.end();
      client.close();
    },
  };
}

/** The caller's names in the XFCC form the target's policy parses; none for a unix caller. */
function forwardedValue(caller: Identity): string | undefined {
  const names = caller.kind === "certificate" ? caller.sans : caller.kind === "forwarded" ? caller.names : [];
  const parts = names.map((n) => xfccPart(n.includes("://") ? "URI" : "DNS", n));
  if (caller.kind === "certificate" && caller.commonName) {
    parts.push(xfccPart("Subject", `CN=${caller.commonName.replace(/,/g, "\\,")}`));
  }
  return parts.length > 0 ? parts.join(";") : undefined;
}

function xfccPart(key: string, value: string): string {
  return `${key}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
