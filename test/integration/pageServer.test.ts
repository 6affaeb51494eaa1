// Page servers with real CRIU on loopback: gateway B receives the memory of a dump gateway A makes,
// B's checkpoint is completed with A's other images, and the process is restored from B.
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointKind,
  CheckpointLogKind,
  CriuOptions,
  type CriuServiceClient,
  type DumpResponse,
  type Event,
  type ExportImagesResponse,
  type GetCheckpointLogResponse,
  type GetCheckpointResponse,
  type ImportImagesResponse,
  type ListPageServersResponse,
  OperationKind,
  type RestoreResponse,
  type StartPageServerResponse,
  type StopPageServerResponse,
} from "../../gen/criu/gateway/v1/gateway.js";
import { call, criuChildren, failure, startTestGateway, type TestGateway } from "../support/gateway.js";
import { type Counter, isAlive, killAndWaitGone, startCounter, waitFor } from "../support/workload.js";

let a: TestGateway;
let b: TestGateway;
const counters: Counter[] = [];
const restoredPids: number[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([startTestGateway(), startTestGateway()]);
});

afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

afterEach(async () => {
  for (const c of counters.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.kill();
    await c.exited;
  }
  for (const pid of restoredPids.splice(0)) await killAndWaitGone(pid);
  for (const gw of [a, b]) {
    expect((await listPageServers(gw.client)).pageServers).toEqual([]);
    expect(gw.gateway.workerPids()).toEqual([]);
    expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
  }
  expect(criuChildren()).toEqual([]);
});

function startPageServer(
  client: CriuServiceClient,
  checkpointId: string,
  port = 0,
  address = "127.0.0.1",
  options: Partial<CriuOptions> = {},
) {
  return call<StartPageServerResponse>((cb) =>
    client.startPageServer({ checkpointId, address, port, options: CriuOptions.fromPartial(options) }, cb),
  );
}

function listPageServers(client: CriuServiceClient) {
  return call<ListPageServersResponse>((cb) => client.listPageServers({}, cb));
}

function getCheckpoint(client: CriuServiceClient, checkpointId: string) {
  return call<GetCheckpointResponse>((cb) => client.getCheckpoint({ checkpointId }, cb));
}

/**
 * Resolves with the page-server operation's finished event on `gw`. Subscribed before the server
 * starts, so the event cannot be missed.
 */
async function pageServerFinished(gw: TestGateway, checkpointId: string): Promise<{ event: Promise<Event> }> {
  const before = gw.gateway.subscriberCount();
  const sub = gw.client.subscribe({
    kinds: [OperationKind.OPERATION_KIND_PAGE_SERVER],
    pid: 0,
    checkpointId,
  });
  await waitFor(() => gw.gateway.subscriberCount() === before + 1, "the subscription to be registered");
  const event = new Promise<Event>((resolve, reject) => {
    sub.on("data", (res: { event?: Event }) => {
      if (res.event?.finished) {
        resolve(res.event);
        sub.cancel();
      }
    });
    sub.on("error", (err: { code?: number }) => {
      if (err.code !== status.CANCELLED) reject(err);
    });
  });
  // Wrapped: an async function returning the bare promise would wait for the event itself.
  return { event };
}

describe("page servers", () => {
  it("receives a dump's memory; with the dump's other images imported, the process restores from it", async () => {
    const finished = await pageServerFinished(b, "migrated");
    const started = (await startPageServer(b.client, "migrated", 0, "127.0.0.1", { logLevel: 4 }))
      .pageServer!;
    expect(started.port).toBeGreaterThan(0);
    expect(isAlive(started.pid)).toBe(true);
    expect((await listPageServers(b.client)).pageServers.map((p) => [p.checkpointId, p.port])).toEqual([
      ["migrated", started.port],
    ]);

    const counter = await startCounter(a.dir, "migrating");
    counters.push(counter);
    const dumped = await call<DumpResponse>((cb) =>
      a.client.dump(
        {
          checkpointId: "source",
          parentCheckpointId: "",
          options: CriuOptions.fromPartial({
            pid: counter.pid,
            ps: { address: "127.0.0.1", port: started.port },
          }),
        },
        cb,
      ),
    );
    await counter.exited;
    const valueAtDump = counter.read();
    expect(dumped.checkpoint?.pagesSentTo).toBe(`127.0.0.1:${started.port}`);
    // CRIU wrote no memory on the dumping side.
    const sourceFiles = readdirSync(join(a.imagesRoot, "source"));
    expect(sourceFiles.filter((n) => n.startsWith("pages-") || n.startsWith("pagemap-"))).toEqual([]);
    expect(sourceFiles).toContain("inventory.img");

    expect((await finished.event).finished?.code).toBe(status.OK);
    expect((await listPageServers(b.client)).pageServers).toEqual([]);
    expect(isAlive(started.pid)).toBe(false);
    const pages = (await getCheckpoint(b.client, "migrated")).checkpoint!;
    expect(pages.kind).toBe(CheckpointKind.CHECKPOINT_KIND_PAGES);
    const pageFiles = readdirSync(join(b.imagesRoot, "migrated"));
    expect(pageFiles.some((n) => n.startsWith("pagemap-"))).toBe(true);
    expect(pageFiles.some((n) => n.startsWith("pages-"))).toBe(true);
    const psLog = await call<GetCheckpointLogResponse>((cb) =>
      b.client.getCheckpointLog(
        { checkpointId: "migrated", kind: CheckpointLogKind.CHECKPOINT_LOG_KIND_PAGE_SERVER },
        cb,
      ),
    );
    expect(psLog.text).toContain("Session over");

    // Neither half restores alone, and each says what to do.
    const sourceRefused = await failure(
      call<RestoreResponse>((cb) => a.client.restore({ checkpointId: "source", options: undefined }, cb)),
    );
    expect(sourceRefused.code).toBe(status.FAILED_PRECONDITION);
    expect(sourceRefused.details).toContain(`page server at 127.0.0.1:${started.port}`);
    const pagesRefused = await failure(
      call<RestoreResponse>((cb) => b.client.restore({ checkpointId: "migrated", options: undefined }, cb)),
    );
    expect(pagesRefused.code).toBe(status.FAILED_PRECONDITION);
    expect(pagesRefused.details).toContain("ImportImages");

    const exported = await call<ExportImagesResponse>((cb) =>
      a.client.exportImages({ checkpointId: "source" }, cb),
    );
    expect(exported.files.map((f) => f.name)).toContain("inventory.img");
    expect(exported.files.map((f) => f.name)).not.toContain("dump.log");
    const imported = await call<ImportImagesResponse>((cb) =>
      b.client.importImages(
        { checkpointId: "migrated", files: exported.files, rootPid: exported.checkpoint!.rootPid },
        cb,
      ),
    );
    expect(imported.checkpoint?.kind).toBe(CheckpointKind.CHECKPOINT_KIND_DUMP);
    expect(imported.checkpoint?.rootPid).toBe(counter.pid);

    const restored = await call<RestoreResponse>((cb) =>
      b.client.restore({ checkpointId: "migrated", options: undefined }, cb),
    );
    restoredPids.push(restored.pid);
    expect(restored.pid).toBe(counter.pid);
    // The restored counter goes on from where it was dumped.
    await waitFor(() => counter.read() > valueAtDump + 5, "the restored counter to keep counting");
  });

  it("publishes nothing when the server is stopped, and stops tracking it", async () => {
    const finished = await pageServerFinished(b, "stopped");
    const started = (await startPageServer(b.client, "stopped")).pageServer!;
    await call<StopPageServerResponse>((cb) => b.client.stopPageServer({ checkpointId: "stopped" }, cb));
    expect((await finished.event).finished?.code).toBe(status.CANCELLED);
    expect(isAlive(started.pid)).toBe(false);
    expect((await failure(getCheckpoint(b.client, "stopped"))).code).toBe(status.NOT_FOUND);
    const again = await failure(
      call<StopPageServerResponse>((cb) => b.client.stopPageServer({ checkpointId: "stopped" }, cb)),
    );
    expect(again.code).toBe(status.NOT_FOUND);
  });

  it("publishes nothing when the dumping side goes away before sending everything", async () => {
    const finished = await pageServerFinished(b, "broken");
    const started = (await startPageServer(b.client, "broken")).pageServer!;
    // A connection that closes without CRIU's final PS_IOV_CLOSE: the server fails ("not flushed").
    await new Promise<void>((resolve, reject) => {
      const socket = connect(started.port, "127.0.0.1", () => socket.end());
      socket.on("close", () => resolve());
      socket.on("error", reject);
    });
    const event = await finished.event;
    expect(event.finished?.code).toBe(status.ABORTED);
    expect(event.finished?.message).toContain("exit status 255");
    expect((await failure(getCheckpoint(b.client, "broken"))).code).toBe(status.NOT_FOUND);
  });

  it("stops its page servers at shutdown and reaps them", async () => {
    const c = await startTestGateway();
    const started = (await startPageServer(c.client, "at-shutdown")).pageServer!;
    expect(criuChildren()).toHaveLength(1);
    await c.close();
    expect(criuChildren()).toEqual([]);
    expect(existsSync(`/proc/${started.pid}`)).toBe(false);
  });

  it("refuses bad requests with a clear status", async () => {
    const badPort = await failure(startPageServer(b.client, "bad-port", 70000));
    expect(badPort.code).toBe(status.INVALID_ARGUMENT);
    expect(badPort.details).toContain("port must be 0 to 65535");
    const badAddress = await failure(startPageServer(b.client, "bad-address", 0, "example.org"));
    expect(badAddress.code).toBe(status.INVALID_ARGUMENT);
    expect((await failure(startPageServer(b.client, "../escape"))).code).toBe(status.INVALID_ARGUMENT);

    const finished = await pageServerFinished(b, "taken");
    await startPageServer(b.client, "taken");
    const twice = await failure(startPageServer(b.client, "taken"));
    expect(twice.code).toBe(status.ALREADY_EXISTS);
    await call<StopPageServerResponse>((cb) => b.client.stopPageServer({ checkpointId: "taken" }, cb));
    await finished.event;

    const counter = await startCounter(a.dir, "no-address");
    counters.push(counter);
    const noAddress = await failure(
      call<DumpResponse>((cb) =>
        a.client.dump(
          {
            checkpointId: "x",
            parentCheckpointId: "",
            options: CriuOptions.fromPartial({ pid: counter.pid, ps: { port: 1234 } }),
          },
          cb,
        ),
      ),
    );
    expect(noAddress.code).toBe(status.INVALID_ARGUMENT);
    expect(noAddress.details).toContain("options.ps.address");

    const importInto = (checkpointId: string, name: string) =>
      failure(
        call<ImportImagesResponse>((cb) =>
          b.client.importImages({ checkpointId, files: [{ name, data: Buffer.alloc(1) }], rootPid: 0 }, cb),
        ),
      );
    expect((await importInto("nowhere", "x.img")).code).toBe(status.NOT_FOUND);
    await call((cb) => b.client.cpuinfoDump({ checkpointId: "cpu", options: undefined }, cb));
    const notPages = await importInto("cpu", "x.img");
    expect(notPages.code).toBe(status.FAILED_PRECONDITION);
    expect(notPages.details).toContain("not of kind PAGES");
  });
});
