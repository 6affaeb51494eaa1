#!/usr/bin/env node
// The gateway's domain (compiled, dist/) in a process of its own, running one dump and killing
// itself with SIGKILL at a chosen moment, as a crash would: a callback of CRIU's ("pre-dump",
// "post-dump": before the gateway answers it) or a phase of the dump ("secured", "answered").
// Before dying it prints the pid of its CRIU worker, if it has one still, which lives on, orphaned.
//
// Usage: dumpThenDie.mjs <images root> <criu binary> <pid> <checkpoint id> <moment> [fsync|none]
import { CriuOptions } from "../../dist/gen/criu/gateway/v1/gateway.js";
import { createCriuOperations } from "../../dist/src/domain/criuOperations.js";
import { EventBus } from "../../dist/src/domain/eventBus.js";
import { ImageStore } from "../../dist/src/domain/imageStore.js";

const [root, criuBin, pid, checkpointId, moment, durability = "fsync"] = process.argv.slice(2);
const operations = createCriuOperations({
  criuBin,
  store: await ImageStore.open(root),
  events: new EventBus(16),
  logTailLines: 10,
  vetoGraceMs: 30_000,
  allowedOptionClasses: new Set(["safe", "admin"]),
  onDumpPhase: (phase) => (phase === moment ? die() : undefined),
});

function die() {
  process.stdout.write(`worker ${operations.workerPids().join(" ")}\n`, () =>
    process.kill(process.pid, "SIGKILL"),
  );
  // Nothing more happens here: the write's callback ends the process.
  return new Promise(() => {});
}

await operations.dump(
  {
    checkpointId,
    parentCheckpointId: undefined,
    options: CriuOptions.fromPartial({ pid: Number(pid), notifyScripts: true }),
    durability,
  },
  {
    caller: "crash test",
    callbacks: {
      timeoutMs: 60_000,
      ask: async (question) => {
        if (question.script === moment) await die();
        return { success: true };
      },
    },
  },
);
process.stdout.write("finished\n");
