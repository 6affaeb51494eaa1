// What the two sides of a migration say to each other, without the transport: the source's side
// is a TargetLink, the target's side a SourceLink (the gRPC side implements both).
import type { CriuOptions, RestoreStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import type { ImageChunk } from "./imageChunks.js";
import type { MigrationMode } from "./migrationMode.js";

export interface MigrationHeader {
  checkpointId: string;
  mode: MigrationMode;
  restoreOptions: CriuOptions | undefined;
  rootPid: number;
  criuVersion: string;
}

/** From the source to the target, in this order: header, chunks, imagesEnd, commit. */
export type ToTarget =
  | { kind: "header"; header: MigrationHeader }
  | { kind: "chunk"; chunk: ImageChunk }
  | { kind: "images-end" }
  | { kind: "commit" };

/** From the target to the source: restored (not yet running), then running. */
export type FromTarget =
  | { kind: "restored"; targetPid: number; statistics: RestoreStatistics | undefined }
  | { kind: "running"; targetPid: number };

/** The source's connection to the target gateway. */
export interface TargetLink {
  /** Resolves when the message may be followed by the next (flow control). */
  send(message: ToTarget): Promise<void>;
  /** The target's next message; rejects with its status (a GatewayError naming the target). */
  next(): Promise<FromTarget>;
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
