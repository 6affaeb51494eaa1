// A dump being written into a staged directory of the image store, and its point of no return.
//
// Until secure() the directory is scratch: any failure removes it and CRIU rolls the processes
// back. secure() records the gateway's own files durably just before CRIU is let go on from
// post-dump; for a dump that stops its processes that is the point of no return, marked on disk
// (UNCONFIRMED_MARKER). From there the images may be all that is left of the processes, and no
// path removes them: they end published, or kept as an unconfirmed checkpoint.

import { promises as fs, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeQuietly, FILE_MODE, replaceFile, settleTree, syncDir } from "./durableFiles.js";
import { GatewayError } from "./errors.js";
import {
  type CheckpointInfo,
  type CheckpointMeta,
  type Durability,
  type OpenDirectory,
  PAGE_SERVER_LOG,
} from "./imageStore.js";
import { describeCheckpoint, META_FILE, type MetaFile, metaFileOf, metaText } from "./metaFile.js";

/** The file whose presence says a dump passed its point of no return unconfirmed by CRIU. */
export const UNCONFIRMED_MARKER = ".unconfirmed";

/** A dump past its point of no return that could not be finished: where it was kept. */
export interface KeptDump {
  id: string;
  /** Published under its id (as unconfirmed); false: left staged, its id being taken. */
  listed: boolean;
}

export interface StagedDump extends OpenDirectory {
  /** CRIU's parent_img for an incremental dump, relative to the images directory. */
  readonly parentImg: string | undefined;
  /**
   * Writes the gateway's own records before CRIU is let past post-dump: meta.json and, for a dump
   * that stops its processes (leaveRunning false), the marker of the point of no return; with
   * durability "fsync" (the default) such a dump's files are then flushed, as one batch. A dump
   * that leaves its processes running has no point of no return (start-up recovery removes it),
   * so its files are flushed once, by publish, while its processes already run on. With "none"
   * nothing is flushed: the files are in the page cache, which outlives the gateway, so start-up
   * recovery still finds them after a gateway crash, but not after a host crash.
   * Throws (ENOSPC, …) for the caller to veto the dump, which CRIU then rolls back.
   */
  secure(meta: CheckpointMeta): Promise<void>;
  /** CRIU answered that the dump failed, and so resumed the processes: discard() may remove it. */
  rolledBack(): void;
  /**
   * Makes the dump visible under its id, whole, and closes the directory; with durability
   * "fsync" flushed first (what secure() flushed is not flushed again), with "none" replying
   * once it is renamed into place. Describes the checkpoint from what it wrote. Past the point
   * of no return a failure keeps the dump (see discard) before it throws.
   */
  publish(meta: CheckpointMeta): Promise<CheckpointInfo>;
  /**
   * Removes everything the dump wrote and closes the directory; past the point of no return it
   * keeps the dump instead, as an unconfirmed checkpoint, and says where. Never throws.
   */
  discard(): Promise<KeptDump | undefined>;
}

/** What a staged dump needs from its store. */
export interface StagingHost {
  readonly root: string;
  exists(id: string): Promise<boolean>;
  get(id: string): Promise<CheckpointInfo>;
  /** Whether images in the parent's chain were imported (a child inherits the mark). */
  parentImported(): Promise<boolean>;
  /** Gives back the id (and the parent) the stage reserved. */
  release(): void;
}

export class StagedDir implements StagedDump {
  #done = false;
  /**
   * Once secure() has run: the files it settled (made private), with their stamps, and whether it
   * flushed them too.
   */
  #secured: { stamps: Map<string, string>; flushed: boolean } | undefined;
  /** Past the point of no return, and CRIU has not said it rolled back. */
  #precious = false;
  #kept: KeptDump | undefined;

  constructor(
    readonly path: string,
    readonly fd: number,
    readonly parentImg: string | undefined,
    private readonly id: string,
    private readonly host: StagingHost,
  ) {}

  async secure(meta: CheckpointMeta): Promise<void> {
    if (this.#done) throw new Error("staged dump already finished");
    const durability = meta.durability ?? "fsync";
    const text = metaText(metaFileOf(meta, await this.host.parentImported()));
    // Small files written synchronously (microseconds; a thread-pool write is three round trips,
    // while CRIU waits at post-dump); settleTree flushes them with the images for "fsync".
    await naming(join(this.path, META_FILE), async (file) => writeFileSync(file, text, { mode: FILE_MODE }));
    if (!meta.leaveRunning) {
      await naming(join(this.path, UNCONFIRMED_MARKER), async (file) =>
        writeFileSync(file, "", { mode: FILE_MODE }),
      );
    }
    const flush = durability !== "none" && !meta.leaveRunning;
    const settled = await naming(this.path, (dir) => settleTree(dir, flush ? durability : "none"));
    this.#secured = { stamps: settled.stamps, flushed: flush };
    this.#precious = !meta.leaveRunning;
  }

  rolledBack(): void {
    this.#precious = false;
  }

  async publish(meta: CheckpointMeta): Promise<CheckpointInfo> {
    if (this.#done) throw new Error("staged dump already finished");
    this.#done = true;
    const durability = meta.durability ?? "fsync";
    const target = join(this.host.root, this.id);
    let written: MetaFile;
    let settled: Awaited<ReturnType<typeof settleTree>>;
    try {
      written = metaFileOf(meta, await this.host.parentImported());
      if (this.#secured === undefined) {
        await fs.writeFile(join(this.path, META_FILE), metaText(written), { mode: FILE_MODE });
        settled = await settleTree(this.path, durability);
      } else {
        settled = await this.#settleSecured(this.#secured, written, durability);
      }
      closeQuietly(this.fd);
      if (await this.host.exists(this.id)) {
        throw new GatewayError(
          "ALREADY_EXISTS",
          `checkpoint ${this.id} appeared while dumping; not replaced`,
        );
      }
      // A rename within one directory takes microseconds: no thread-pool round trip for it.
      renameSync(this.path, target);
      if (durability !== "none") await syncDir(this.host.root);
    } catch (err) {
      if (this.#precious) this.#kept = await this.#keep();
      else await this.#remove();
      this.host.release();
      throw err;
    }
    this.host.release();
    // Renamed first and unmarked after: a crash in between leaves it listed, as unconfirmed.
    const unconfirmed = this.#precious && !(await unmark(target, durability));
    // Described from what was just written, rather than read back from the disk.
    return describeCheckpoint(this.id, written, {
      sizeBytes: settled.sizeBytes,
      mtime: new Date(),
      pageServerLog: settled.names.includes(PAGE_SERVER_LOG),
      unconfirmed,
    });
  }

  /**
   * Publish's settling of a secured dump: meta.json replaced, now with CRIU's statistics (they are
   * a report, so when that fails the secured one stands), and the files made private and, for
   * "fsync", flushed in one batch with the directory. What secure() settled is not settled again:
   * only what CRIU wrote after post-dump (its statistics, the rest of its log) and the new
   * meta.json; but where secure() did not flush (a dump that leaves its processes running), every
   * file is flushed here.
   */
  async #settleSecured(
    secured: { stamps: Map<string, string>; flushed: boolean },
    written: MetaFile,
    durability: Durability,
  ): Promise<Awaited<ReturnType<typeof settleTree>>> {
    const alreadyFlushed = durability === "none" || secured.flushed;
    // Flushed before its rename where the dump is past its point of no return: start-up recovery
    // reads it. The directory is flushed by settleTree next.
    const replaced = await replaceFile(
      this.path,
      META_FILE,
      metaText(written),
      alreadyFlushed ? durability : "none",
      false,
    ).then(
      () => true,
      () => false,
    );
    return settleTree(
      this.path,
      durability,
      (name, stamp) =>
        alreadyFlushed && ((name === META_FILE && replaced) || secured.stamps.get(name) === stamp),
    );
  }

  async discard(): Promise<KeptDump | undefined> {
    if (this.#done) return this.#kept;
    this.#done = true;
    if (this.#precious) this.#kept = await this.#keep();
    else await this.#remove();
    this.host.release();
    return this.#kept;
  }

  async #remove(): Promise<void> {
    closeQuietly(this.fd);
    await fs.rm(this.path, { recursive: true, force: true }).catch(() => {});
  }

  /** Publishes the dump as it is, marked unconfirmed; left staged when even that fails. */
  async #keep(): Promise<KeptDump> {
    closeQuietly(this.fd);
    try {
      if (!(await this.host.exists(this.id))) {
        await fs.rename(this.path, join(this.host.root, this.id));
        await syncDir(this.host.root);
        return { id: this.id, listed: true };
      }
    } catch {
      // Left where it is: the next start's recovery tries again.
    }
    return { id: this.id, listed: false };
  }
}

/** Runs `write` on `path`; a failure that names no path (write(2) errors do not) gets this one. */
async function naming<T>(path: string, write: (path: string) => Promise<T>): Promise<T> {
  try {
    return await write(path);
  } catch (err) {
    if (typeof err === "object" && err !== null && !("path" in err)) Object.assign(err, { path });
    throw err;
  }
}

/** Whether the mark is gone: a failure leaves it marked unconfirmed, which is safe. */
async function unmark(dir: string, durability: Durability): Promise<boolean> {
  try {
    await fs.rm(join(dir, UNCONFIRMED_MARKER), { force: true });
    if (durability !== "none") await syncDir(dir);
    return true;
  } catch {
    return false;
  }
}
