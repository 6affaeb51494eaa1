// CriuService.Migrate and CriuService.AcceptMigration as implementations for the call pipeline:
// what each call touches (for admission) and how its messages meet the migration's two sides
// (src/domain/migration). Identification, admission, audit and status are the pipeline's.
import {
  AcceptMigrationRequest,
  type AcceptMigrationResponse,
  CriuOptions,
  type CriuServiceServer,
  type MigrateRequest,
  type MigrateResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import type { CriuOperations } from "../domain/criuOperations.js";
import { invalidArgument } from "../domain/errors.js";
import type { ImageStore } from "../domain/imageStore.js";
import { acceptMigration } from "../domain/migration/acceptMigration.js";
import { migrateFromSource } from "../domain/migration/migrateSource.js";
import { kernelLimits } from "../domain/migration/migrationMode.js";
import type { ToTarget } from "../domain/migration/targetLink.js";
import { AsyncQueue } from "./asyncQueue.js";
import type { AdmittedContext, CallInput, Judgement } from "./callContext.js";
import type { CallPipeline } from "./callPipeline.js";
import { connectTarget, type TargetSettings } from "./migrationClient.js";
import { acceptResponseOf, migrateResponseOf, modeFromApi, toTargetOf } from "./migrationCodec.js";
import { checkPushTarget } from "./pushClient.js";

export interface MigrationDeps {
  pipeline: CallPipeline;
  operations: Pick<
    CriuOperations,
    "dump" | "lazyDump" | "featureCheck" | "criuVersion" | "restore" | "startLazyPages" | "holdRefills"
  >;
  store: ImageStore;
  targets: TargetSettings;
}

/** Migrate and AcceptMigration, for the composition root. */
export function createMigrationService(
  deps: MigrationDeps,
): Pick<CriuServiceServer, "migrate" | "acceptMigration"> {
  return {
    migrate: deps.pipeline.serverStreaming("Migrate", migrateJudgement, (input, context) =>
      migrate(deps, input, context),
    ),
    acceptMigration: deps.pipeline.bidiStreaming(
      "AcceptMigration",
      acceptJudgement,
      (input, context) => accept(deps, input, context),
      AcceptMigrationRequest.fromPartial({}),
      // Images and memory arrive no faster than the disk and CRIU's lazy-pages daemon take them.
      ACCEPT_PACE,
    ),
  };
}

/** Messages of AcceptMigration held unread at most (1 MiB image chunks, or pieces of memory). */
const ACCEPT_PACE = 8;

/** The id a request's images travel under; made up once per request when it names none. */
const madeUpIds = new WeakMap<MigrateRequest, string>();
function checkpointIdOf(req: MigrateRequest): string {
  if (req.checkpointId) return req.checkpointId;
  let id = madeUpIds.get(req);
  if (!id) {
    id = `migration-${req.pid}-${Date.now()}`;
    madeUpIds.set(req, id);
  }
  return id;
}

/** The caller dumps the tree here: the Dump grant too, on every process of it. */
function migrateJudgement(req: MigrateRequest): Judgement {
  return {
    rpcs: ["Migrate", "Dump"],
    access: {
      checkpoints: [{ id: checkpointIdOf(req), access: "write" }],
      dumpRoot: req.pid,
      options: CriuOptions.fromPartial({ ...req.dumpOptions, pid: req.pid }),
      operation: true,
    },
  };
}

/** The source gateway (or the caller it speaks for) restores here: the Restore grant too. */
function acceptJudgement(first: AcceptMigrationRequest): Judgement {
  if (!first.header) throw invalidArgument("the first message of AcceptMigration must be its header");
  return {
    rpcs: ["AcceptMigration", "Restore"],
    access: {
      checkpoints: [{ id: first.header.checkpointId, access: "write" }],
      options: first.header.restoreOptions,
      operation: true,
    },
  };
}

async function* migrate(
  deps: MigrationDeps,
  input: CallInput<MigrateRequest>,
  context: AdmittedContext,
): AsyncIterable<MigrateResponse> {
  const req = input.first;
  const responses = new AsyncQueue<MigrateResponse>();
  const run = migrateFromSource(
    {
      pid: req.pid,
      target: req.target,
      mode: modeFromApi(req.mode),
      dumpOptions: req.dumpOptions,
      restoreOptions: req.restoreOptions,
      checkpointId: checkpointIdOf(req),
    },
    {
      store: deps.store,
      dump: deps.operations.dump,
      lazyDump: deps.operations.lazyDump,
      featureCheck: deps.operations.featureCheck,
      criuVersion: deps.operations.criuVersion,
      host: kernelLimits,
      checkTarget: (target) => checkPushTarget(deps.targets, target),
      connect: (target) => connectTarget(deps.targets, target, context.identity),
      holdRefills: deps.operations.holdRefills,
    },
    context.operation,
    async (event) => responses.push(migrateResponseOf(event)),
  ).then(
    () => responses.end(),
    (err: unknown) => responses.end({ cause: err }),
  );
  yield* responses;
  await run;
}

async function* accept(
  deps: MigrationDeps,
  input: CallInput<AcceptMigrationRequest>,
  context: AdmittedContext,
): AsyncIterable<AcceptMigrationResponse> {
  const responses = new AsyncQueue<AcceptMigrationResponse>();
  const rest = input.rest[Symbol.asyncIterator]();
  let first: AcceptMigrationRequest | undefined = input.first;
  const aborted = new Promise<never>((_resolve, reject) => {
    const fail = () => reject(context.signal.reason);
    if (context.signal.aborted) fail();
    else context.signal.addEventListener("abort", fail, { once: true });
  });
  aborted.catch(() => undefined);
  // The source's messages, one at a time; a source that goes away ends the wait at once.
  const next = async (): Promise<ToTarget | undefined> => {
    if (first) {
      const message = first;
      first = undefined;
      return toTargetOf(message);
    }
    const item = await Promise.race([rest.next(), aborted]);
    return item.done ? undefined : toTargetOf(item.value);
  };
  const run = acceptMigration(
    { next, send: async (message) => responses.push(acceptResponseOf(message)) },
    {
      store: deps.store,
      restore: deps.operations.restore,
      startLazyPages: deps.operations.startLazyPages,
      holdRefills: deps.operations.holdRefills,
      admit: async () => context.operation,
    },
  ).then(
    () => responses.end(),
    (err: unknown) => responses.end({ cause: err }),
  );
  yield* responses;
  await run;
}
