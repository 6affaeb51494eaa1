// page-server start|stop|ls and copy-images: memory received over the network, then completed.
import {
  CriuOptions,
  type ExportImagesResponse,
  ImportImagesResponse,
  ListPageServersResponse,
  StartPageServerResponse,
  type StopPageServerResponse,
} from "../../../gen/criu/gateway/v1/gateway.js";
import type { Args } from "../command.js";
import type {
  COPY_IMAGES_OPTIONS,
  PAGE_SERVER_OPTIONS,
  PAGE_SERVER_START_OPTIONS,
} from "../commands/pageServer.js";
import { call, connect, withClient } from "../connection.js";
import { formatSize, print, protoJson } from "../output.js";
import { integer, optionalInteger } from "../parse.js";
import { startProgress } from "../progress.js";

export function start({ values, positionals }: Args<typeof PAGE_SERVER_START_OPTIONS>): Promise<number> {
  const id = positionals[0]!;
  const request = {
    checkpointId: id,
    address: values.address ?? "",
    port: values.port === undefined ? 0 : integer("--port", values.port),
    options: CriuOptions.fromPartial({ logLevel: optionalInteger("--log-level", values["log-level"]) }),
  };
  return withClient(values, async (client) => {
    const res = await call<StartPageServerResponse>((cb) => client.startPageServer(request, cb));
    const ps = res.pageServer;
    print(
      values.json,
      `page server for checkpoint ${id} listening on ${ps?.address || "*"}:${ps?.port} (pid ${ps?.pid})`,
      () => protoJson(StartPageServerResponse, res),
    );
    return 0;
  });
}

export function stop({ values, positionals }: Args<typeof PAGE_SERVER_OPTIONS>): Promise<number> {
  const id = positionals[0]!;
  return withClient(values, async (client) => {
    await call<StopPageServerResponse>((cb) => client.stopPageServer({ checkpointId: id }, cb));
    print(values.json, `page server for checkpoint ${id} stopped`, () => ({ stopped: id }));
    return 0;
  });
}

export function list({ values }: Args<typeof PAGE_SERVER_OPTIONS>): Promise<number> {
  return withClient(values, async (client) => {
    const res = await call<ListPageServersResponse>((cb) => client.listPageServers({}, cb));
    const human =
      res.pageServers.length === 0
        ? "no page servers"
        : res.pageServers
            .map((p) => `${p.checkpointId}\tpid ${p.pid}\t${p.address || "*"}:${p.port}`)
            .join("\n");
    print(values.json, human, () => protoJson(ListPageServersResponse, res));
    return 0;
  });
}

/** Exports from one gateway and imports into the other, with its progress on a terminal. */
export function copyImages({ values, positionals }: Args<typeof COPY_IMAGES_OPTIONS>): Promise<number> {
  const id = positionals[0]!;
  return withClient(values, async (source) => {
    const target = connect(values, values.to);
    const progress = startProgress(`copying ${id} to ${values.to}`, { enabled: !values.json });
    try {
      progress.stage("exporting");
      const exported = await call<ExportImagesResponse>((cb) =>
        source.exportImages({ checkpointId: id }, cb),
      );
      const bytes = exported.files.reduce((sum, f) => sum + f.data.length, 0);
      progress.stage(`importing ${exported.files.length} images, ${formatSize(bytes)}`);
      const res = await call<ImportImagesResponse>((cb) =>
        target.importImages(
          {
            checkpointId: values.into ?? id,
            files: exported.files,
            rootPid: exported.checkpoint?.rootPid ?? 0,
          },
          cb,
        ),
      );
      progress.done();
      print(
        values.json,
        `${exported.files.length} images copied into checkpoint ${res.checkpoint?.checkpointId}`,
        () => protoJson(ImportImagesResponse, res),
      );
      return 0;
    } finally {
      progress.done();
      target.close();
    }
  });
}
