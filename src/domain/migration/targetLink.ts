// What the two sides of a migration say to each other, without the transport: the source's side
// is a TargetLink, the target's side a SourceLink (the gRPC side implements both).
import type { CriuOptions, RestoreStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import type { ImageChunk } from "./imageChunks.js";
import type { MigrationMode } from "./migrationMode.js";
import type { PageData } from "./pageTunnel.js";

export interface MigrationHeader {
  checkpointId: string;
  mode: MigrationMode;
  restoreOptions: CriuOptions | undefined;
  rootPid: number;
  criuVersion: string;
}

/**
 * From the source to the target, in this order: header, chunks, imagesEnd, commit; in POST_COPY,
 * from imagesEnd on, the source CRIU's page server's bytes as page data among them.
 */
export type ToTarget =
  | { kind: "header"; header: MigrationHeader }
  | { kind: "chunk"; chunk: ImageChunk }
  | { kind: "images-end" }
  | { kind: "commit" }
  | PageData;

/**
 * From the target to the source: restored (not yet running), then running; in POST_COPY, the
 * lazy-pages daemon's bytes as page data among them, until the target ends the call once every
 * page is in.
 */
export type FromTarget =
  | { kind: "restored"; targetPid: number; statistics: RestoreStatistics | undefined }
  | { kind: "running"; targetPid: number }
  | PageData;

/** The source's connection to the target gateway. */
export interface TargetLink {
  /** Resolves when the message may be followed by the next (flow control). */
  send(message: ToTarget): Promise<void>;
  /**
   * The target's next message; undefined once the target has ended the call with success;
   * rejects with its status (a GatewayError naming the target).
   */
  next(): Promise<FromTarget | undefined>;
  /** Cancels the call: the target kills what it restored and removes the checkpoint. */
  abort(): void;
  /** Ends the call normally and closes the connection. */
  close(): void;
}

/** The target's connection to the source gateway. */
export interface SourceLink {
  /** The source's next message; undefined when the source ended the call. */
  next(): Promise<ToTarget | undefined>;
  send(message: FromTarget): Promise<void>;
}
