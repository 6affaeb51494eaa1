// The gateway's image store: one directory per checkpoint under a root the gateway owns.
//
// Layout (all at the same depth, because CRIU's parent link is the relative path "../<parent>"):
//   <root>/<id>/                 a published checkpoint: CRIU's images, dump.log, meta.json
//   <root>/.tmp-<id>-<random>/   a dump in progress; renamed to <root>/<id> only after success+fsync
//   <root>/.del-<id>-<random>/   a checkpoint being deleted (renamed away first, so it vanishes at once)
//   <dir>/.unconfirmed           in a staged or published dump: it passed its point of no return
//                                (its processes may exist only in these images) and CRIU has not
//                                confirmed it; such a directory is never removed but by DeleteCheckpoint
// Names starting with "." can never be checkpoint ids, so internal entries never collide with them.

import { randomBytes } from "node:crypto";
import { promises as fs, lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DumpStatistics } from "../../gen/criu/gateway/v1/gateway.js";
import {
  closeQuietly,
  DIR_MODE,
  FILE_MODE,
  isErrno,
  openDirFd,
  pathExists,
  readNoFollow,
  settleTree,
  syncDir,
} from "./durableFiles.js";
import { GatewayError, invalidArgument } from "./errors.js";
import { describeCheckpoint, META_FILE, type MetaFile, readMeta } from "./metaFile.js";
import type { ProcessRecord } from "./processTree.js";
import { StagedDir, type StagedDump, UNCONFIRMED_MARKER } from "./stagedDump.js";

export { isErrno } from "./durableFiles.js";
export { META_FILE } from "./metaFile.js";
export type { KeptDump, StagedDump } from "./stagedDump.js";
export { UNCONFIRMED_MARKER } from "./stagedDump.js";

export const CHECKPOINT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const DUMP_LOG = "dump.log";
export const RESTORE_LOG = "restore.log";
export const PRE_DUMP_LOG = "pre-dump.log";
export const CPUINFO_DUMP_LOG = "cpuinfo-dump.log";
export const CPUINFO_CHECK_LOG = "cpuinfo-check.log";
export const PAGE_SERVER_LOG = "page-server.log";

/**
 * "complete": CRIU confirmed the dump. "unconfirmed": the gateway or its worker stopped after it
 * let CRIU stop the processes and before CRIU answered; the images are all there may be of them.
 */
export type CheckpointState = "complete" | "unconfirmed";

/**
 * When a publish counts as done: "fsync" once the checkpoint is on disk, "none" once it is renamed
 * into place (the kernel writes it back later). Checkpoints written before this was recorded were
 * flushed.
 */
export type Durability = "fsync" | "none";

/** What a checkpoint holds. Checkpoints written before kinds were recorded are dumps. */
export type CheckpointKind = "dump" | "pre-dump" | "cpuinfo" | "pages";

/** Logs of CRIU are files of the checkpoint's directory with these names only. */
const LOG_FILES: ReadonlySet<string> = new Set([
  DUMP_LOG,
  RESTORE_LOG,
  PRE_DUMP_LOG,
  CPUINFO_DUMP_LOG,
  CPUINFO_CHECK_LOG,
  PAGE_SERVER_LOG,
]);

export interface CheckpointInfo {
  id: string;
  createTime: Date;
  /** Sum of the sizes of the checkpoint's files, logs included. */
  sizeBytes: number;
  rootPid: number;
  parentId: string | undefined;
  criuVersion: string;
  leaveRunning: boolean;
  kind: CheckpointKind;
  /** CRIU's statistics of the dump or pre-dump that made it, when it wrote them. */
  dumpStatistics: DumpStatistics | undefined;
  /**
   * The processes the dump covered (read from the frozen tree), so that a restore can be
   * authorized against them. Undefined for checkpoints made without that record.
   */
  processes: ProcessRecord[] | undefined;
  /** For a dump made with a page server: "address:port" of the server that got its memory. */
  pagesSentTo: string | undefined;
  /**
   * Images in it, or in a checkpoint of its parent chain, were written by ImportImages: a caller
   * supplied them, CRIU did not make them here.
   */
  importedImages: boolean;
  state: CheckpointState;
  /** Whether it was flushed to disk before it was reported published. */
  durability: Durability;
}

/** What a publish records; whether images were imported the store works out itself. */
export type CheckpointMeta = Omit<
  CheckpointInfo,
  | "id"
  | "sizeBytes"
  | "createTime"
  | "kind"
  | "dumpStatistics"
  | "processes"
  | "pagesSentTo"
  | "importedImages"
  | "state"
  | "durability"
> & {
  /** "dump" when not given. */
  kind?: CheckpointKind;
  dumpStatistics?: DumpStatistics;
  processes?: ProcessRecord[];
  pagesSentTo?: string;
  /** The images came from a caller (ImportCheckpoint), not from CRIU on this host. */
  importedImages?: boolean;
  /** "fsync" when not given. */
  durability?: Durability;
};

/** One of CRIU's image files, as ExportImages and ImportImages move them. */
export interface ImageFileData {
  name: string;
  data: Uint8Array;
}

/** What may be exported or imported: CRIU's files, never the gateway's metadata or logs. */
const IMAGE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
function isImageName(name: string): boolean {
  return IMAGE_NAME_PATTERN.test(name) && name !== META_FILE && !LOG_FILES.has(name);
}

/** A log of CRIU, possibly cut at its start. */
export interface LogText {
  text: string;
  /** Whether the start was cut. */
  truncated: boolean;
  /** The whole file's size. */
  sizeBytes: number;
}

/** A directory held open for CRIU, which reaches it as /proc/<gateway pid>/fd/<fd>. */
export interface OpenDirectory {
  readonly path: string;
  readonly fd: number;
}

/** What start-up did with a staged directory an earlier run left behind. */
export interface Recovered {
  /** The checkpoint id it was staged for. */
  id: string;
  /**
   * "removed": it never reached its point of no return (CRIU rolled back, the processes run on).
   * "kept": past it, published as an unconfirmed checkpoint. "left": past it, but its id is
   * taken; left in place under `dir`, for someone to move or delete.
   */
  outcome: "removed" | "kept" | "left";
  dir: string;
}

/** What a person reads about one recovered staged directory. */
export function describeRecovered(r: Recovered): string {
  switch (r.outcome) {
    case "removed":
      return `removed the staged dump of checkpoint ${r.id}: it never reached its point of no return, so CRIU rolled it back and its processes ran on`;
    case "kept":
      return `kept checkpoint ${r.id} as UNCONFIRMED: its dump passed its point of no return, and the gateway stopped before CRIU answered; restore it, or delete it if its processes still run`;
    case "left":
      return `left the staged dump of checkpoint ${r.id} in ${r.dir}: it passed its point of no return, but a checkpoint ${r.id} exists; move it under a free id or delete it`;
  }
}

export interface OpenedCheckpoint extends OpenDirectory {
  readonly info: CheckpointInfo;
  close(): Promise<void>;
}

export class ImageStore {
  /** Ids with a dump in progress: a second dump of the same id is refused at once. */
  readonly #staging = new Set<string>();
  /** Ids in use by a restore or as a dump's parent, with a count: such checkpoints are not deleted. */
  readonly #inUse = new Map<string, number>();
  /** Ids being deleted: from the last in-use check until they are gone, nothing may start using them. */
  readonly #deleting = new Set<string>();
  /** Ids an ImportImages is writing into. */
  readonly #importing = new Set<string>();

  private constructor(readonly root: string) {}

  /** What start-up found staged by an earlier run, and did with it. */
  readonly recovered: Recovered[] = [];

  /**
   * Creates the root if needed (0700) and recovers what an earlier run left: interrupted deletes
   * are finished, staged dumps past their point of no return published as unconfirmed
   * checkpoints, other staged directories removed.
   */
  static async open(root: string): Promise<ImageStore> {
    await fs.mkdir(root, { recursive: true, mode: DIR_MODE });
    const stat = await fs.stat(root);
    if (!stat.isDirectory()) throw new Error(`images root ${root} is not a directory`);
    const store = new ImageStore(root);
    for (const name of await fs.readdir(root)) {
      if (name.startsWith(".del-")) await fs.rm(join(root, name), { recursive: true, force: true });
      else if (name.startsWith(".tmp-")) {
        const recovered = await store.#recover(name);
        if (recovered) store.recovered.push(recovered);
      }
    }
    return store;
  }

  /**
   * Where migrations record the trees they hold stopped (StoppedTree), so that a restart after a
   * crash continues or kills them (settleLeftStopped). It exists only while there are some.
   */
  get stoppedTreesDir(): string {
    return join(this.root, ".stopped-trees");
  }

  /** Undefined for a scratch directory, which is removed without a word. */
  async #recover(name: string): Promise<Recovered | undefined> {
    const dir = join(this.root, name);
    // ".tmp-<id>-<12 hex digits>", as stage() names it.
    const id = /^\.tmp-(.+)-[0-9a-f]{12}$/.exec(name)?.[1] ?? "";
    if (id === "") {
      await fs.rm(dir, { recursive: true, force: true });
      return undefined;
    }
    const pastNoReturn =
      CHECKPOINT_ID_PATTERN.test(id) &&
      (await pathExists(join(dir, UNCONFIRMED_MARKER))) &&
      (await readMeta(dir)) !== undefined;
    if (!pastNoReturn) {
      await fs.rm(dir, { recursive: true, force: true });
      return { id, outcome: "removed", dir };
    }
    if (await this.#exists(id)) return { id, outcome: "left", dir };
    await fs.rename(dir, join(this.root, id));
    await syncDir(this.root);
    return { id, outcome: "kept", dir: join(this.root, id) };
  }

  static validateId(id: string, field = "checkpoint_id"): void {
    if (id === "") throw invalidArgument(`${field} is required`);
    if (!CHECKPOINT_ID_PATTERN.test(id)) {
      const shown = id.length > 64 ? `${quote(id.slice(0, 64))}…` : quote(id);
      throw invalidArgument(
        `${field} ${shown} is not a valid checkpoint id: use 1 to 128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit`,
      );
    }
  }

  /** Prepares a dump into a fresh temporary directory; ALREADY_EXISTS when the id is taken. */
  async stage(id: string, parentId: string | undefined): Promise<StagedDump> {
    ImageStore.validateId(id);
    if (parentId !== undefined) ImageStore.validateId(parentId, "parent_checkpoint_id");
    const alreadyExists = () =>
      new GatewayError("ALREADY_EXISTS", `checkpoint ${id} already exists; delete it or choose another id`);
    const parentNotFound = () =>
      new GatewayError("NOT_FOUND", `parent checkpoint ${parentId} does not exist`);
    // Reserve the id and hold the parent before the first await, so that a concurrent stage of the
    // same id, or a concurrent delete of the parent, cannot slip in between the checks below.
    if (this.#staging.has(id)) throw alreadyExists();
    this.#staging.add(id);
    if (parentId !== undefined) this.#acquire(parentId);
    const release = () => {
      this.#staging.delete(id);
      if (parentId !== undefined) this.#release(parentId);
    };
    try {
      if (parentId !== undefined && this.#deleting.has(parentId)) throw parentNotFound();
      if (await this.#exists(id)) throw alreadyExists();
      if (parentId !== undefined && !(await this.#exists(parentId))) throw parentNotFound();
    } catch (err) {
      release();
      throw err;
    }
    const path = join(this.root, `.tmp-${id}-${randomBytes(6).toString("hex")}`);
    let fd: number;
    try {
      // Synchronously, like the checks above: a mkdir in the store's root takes microseconds.
      mkdirSync(path, { mode: DIR_MODE });
      fd = await openDirFd(path);
    } catch (err) {
      release();
      await fs.rm(path, { recursive: true, force: true });
      throw err;
    }
    return new StagedDir(path, fd, parentId === undefined ? undefined : `../${parentId}`, id, {
      root: this.root,
      exists: (other) => this.#exists(other),
      get: (other) => this.get(other),
      // Imported images pass down the parent chain: a child's memory may come from them.
      parentImported: async () =>
        parentId !== undefined && (await this.#read(parentId))?.importedImages === true,
      release,
    });
  }

  /**
   * A throw-away directory for requests that need an images directory but make no checkpoint
   * (CHECK, CPUINFO): CRIU writes its log there. Named like a staged dump, so start-up cleans it.
   */
  async scratch(purpose: string): Promise<OpenDirectory & { discard(): Promise<void> }> {
    // A longer suffix than a staged dump's: start-up removes it without taking it for one.
    const path = join(this.root, `.tmp-${purpose}-${randomBytes(8).toString("hex")}`);
    // Synchronous, as the directory's descriptor is: a post-copy migration makes one while the
    // tree is frozen, and a trip through the thread pool costs more than the mkdir.
    mkdirSync(path, { mode: DIR_MODE });
    const fd = await openDirFd(path).catch(async (err) => {
      await fs.rm(path, { recursive: true, force: true });
      throw err;
    });
    let done = false;
    return {
      path,
      fd,
      discard: async () => {
        if (done) return;
        done = true;
        closeQuietly(fd);
        await fs.rm(path, { recursive: true, force: true }).catch(() => {});
      },
    };
  }

  /** Opens a published checkpoint for a restore; NOT_FOUND when there is none. */
  async openCheckpoint(id: string): Promise<OpenedCheckpoint> {
    const info = await this.get(id);
    this.#acquire(id);
    const path = join(this.root, id);
    let fd: number;
    try {
      if (this.#deleting.has(id)) throw notFound(id);
      fd = await openDirFd(path);
    } catch (err) {
      this.#release(id);
      // Deleted between the lookup above and the open.
      if (isErrno(err, "ENOENT")) throw notFound(id);
      throw err;
    }
    let closed = false;
    return {
      path,
      fd,
      info,
      close: async () => {
        if (closed) return;
        closed = true;
        closeQuietly(fd);
        this.#release(id);
      },
    };
  }

  async get(id: string): Promise<CheckpointInfo> {
    ImageStore.validateId(id);
    const info = await this.#read(id);
    if (!info) throw notFound(id);
    return info;
  }

  /** One of a checkpoint's image files, never through a symlink; undefined when it has none. */
  async readImage(id: string, file: string): Promise<Buffer | undefined> {
    ImageStore.validateId(id);
    if (file.includes("/") || file.startsWith(".")) throw new Error(`${file} is not an image file name`);
    try {
      return await fs.readFile(join(this.root, id, file), { flag: readNoFollow });
    } catch (err) {
      if (isErrno(err, "ENOENT") || isErrno(err, "ELOOP")) return undefined;
      throw err;
    }
  }

  /**
   * One of CRIU's logs of a checkpoint, at most `maxBytes` of it: a longer log is cut at its
   * start (then at the next line break), because CRIU says what failed at the end. NOT_FOUND when
   * the checkpoint or the log does not exist.
   */
  async readLog(id: string, file: string, maxBytes: number): Promise<LogText> {
    await this.get(id);
    if (!LOG_FILES.has(file)) throw new Error(`${file} is not one of CRIU's logs`);
    const noLog = () => new GatewayError("NOT_FOUND", `checkpoint ${id} has no ${file}`);
    let handle: Awaited<ReturnType<typeof fs.open>>;
    try {
      handle = await fs.open(join(this.root, id, file), readNoFollow);
    } catch (err) {
      if (isErrno(err, "ENOENT") || isErrno(err, "ELOOP")) throw noLog();
      throw err;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw noLog();
      const size = stat.size;
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, size - length);
      let bytes = buffer.subarray(0, bytesRead);
      const truncated = size > maxBytes;
      if (truncated) {
        // Start at a line boundary rather than mid-line (or mid-character).
        const nl = bytes.indexOf(0x0a);
        if (nl >= 0) bytes = bytes.subarray(nl + 1);
      }
      return { text: bytes.toString("utf8"), truncated, sizeBytes: size };
    } finally {
      await handle.close();
    }
  }

  /** Every published checkpoint, oldest first. */
  async list(): Promise<CheckpointInfo[]> {
    const out: CheckpointInfo[] = [];
    for (const name of await fs.readdir(this.root)) {
      if (!CHECKPOINT_ID_PATTERN.test(name)) continue;
      const info = await this.#read(name);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.createTime.getTime() - b.createTime.getTime() || a.id.localeCompare(b.id));
  }

  /**
   * Removes a checkpoint. FAILED_PRECONDITION when another checkpoint is incremental to it or a
   * restore or dump is using it. The refusal names only the children `canSee` allows (the
   * caller's readable namespaces) and counts the others.
   */
  async delete(id: string, canSee: (childId: string) => boolean = () => true): Promise<void> {
    await this.get(id);
    if ((this.#inUse.get(id) ?? 0) > 0) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${id} is in use by a running restore or dump`,
      );
    }
    const children = (await this.list()).filter((c) => c.parentId === id).map((c) => c.id);
    if (children.length > 0) {
      const seen = children.filter(canSee);
      const hidden = children.length - seen.length;
      const others = `${hidden} checkpoint${hidden === 1 ? "" : "s"} you may not read`;
      const named = seen.length === 0 ? others : `${seen.join(", ")}${hidden > 0 ? ` and of ${others}` : ""}`;
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${id} is the parent of ${named}; ${children.length === 1 ? "it" : "they"} must be deleted first`,
      );
    }
    // Checked again after the awaits above, and in the same tick the id is marked as being deleted:
    // a restore or dump that took the checkpoint meanwhile wins, and none can take it from now on.
    if (this.#deleting.has(id)) throw notFound(id);
    if ((this.#inUse.get(id) ?? 0) > 0) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${id} is in use by a running restore or dump`,
      );
    }
    this.#deleting.add(id);
    const doomed = join(this.root, `.del-${id}-${randomBytes(6).toString("hex")}`);
    try {
      await fs.rename(join(this.root, id), doomed);
    } catch (err) {
      if (isErrno(err, "ENOENT")) throw notFound(id);
      throw err;
    } finally {
      this.#deleting.delete(id);
    }
    await syncDir(this.root);
    await fs.rm(doomed, { recursive: true, force: true });
  }

  #acquire(id: string): void {
    this.#inUse.set(id, (this.#inUse.get(id) ?? 0) + 1);
  }

  #release(id: string): void {
    const n = (this.#inUse.get(id) ?? 1) - 1;
    if (n <= 0) this.#inUse.delete(id);
    else this.#inUse.set(id, n);
  }

  /**
   * An lstat of one entry of the store's root, synchronously: its dentry is cached, so it takes
   * microseconds, where a thread-pool round trip costs more, three times on a dump's way.
   */
  async #exists(id: string): Promise<boolean> {
    try {
      lstatSync(join(this.root, id));
      return true;
    } catch (err) {
      if (isErrno(err, "ENOENT")) return false;
      throw err;
    }
  }

  async #read(id: string): Promise<CheckpointInfo | undefined> {
    const dir = join(this.root, id);
    let stat: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      stat = await fs.lstat(dir);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
    // A symlink or file planted in the root is not a checkpoint and is never followed.
    if (!stat.isDirectory()) return undefined;
    // A directory without readable metadata still lists, described by what the filesystem knows.
    const meta = (await readMeta(dir)) ?? {};
    let sizeBytes = 0;
    let pageServerLog = false;
    let unconfirmed = false;
    try {
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        if (!entry.isFile()) continue;
        sizeBytes += (await fs.lstat(join(dir, entry.name))).size;
        if (entry.name === PAGE_SERVER_LOG) pageServerLog = true;
        if (entry.name === UNCONFIRMED_MARKER) unconfirmed = true;
      }
    } catch (err) {
      // Deleted (renamed away) while being read: it is gone, not an error.
      if (isErrno(err, "ENOENT")) return undefined;
      throw err;
    }
    return describeCheckpoint(id, meta, { sizeBytes, mtime: stat.mtime, pageServerLog, unconfirmed });
  }

  /**
   * A checkpoint and its ancestors, itself first, each parent after its child; empty when it does
   * not exist. Ends at the first ancestor missing (or not a checkpoint id), or at a loop.
   */
  async lineage(id: string): Promise<CheckpointInfo[]> {
    const chain: CheckpointInfo[] = [];
    const seen = new Set<string>();
    let next: string | undefined = id;
    while (next !== undefined && CHECKPOINT_ID_PATTERN.test(next) && !seen.has(next)) {
      seen.add(next);
      const info = await this.#read(next);
      if (!info) break;
      chain.push(info);
      next = info.parentId;
    }
    return chain;
  }

  /** CRIU's image files of a checkpoint, at most `maxBytes` of them in all. */
  async exportImages(id: string, maxBytes: number): Promise<ImageFileData[]> {
    await this.get(id);
    const dir = join(this.root, id);
    const files: ImageFileData[] = [];
    let total = 0;
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile() || !isImageName(entry.name)) continue;
      const data = await fs.readFile(join(dir, entry.name), { flag: readNoFollow });
      total += data.length;
      if (total > maxBytes) {
        throw new GatewayError(
          "RESOURCE_EXHAUSTED",
          `the images of checkpoint ${id} exceed ${maxBytes} bytes, more than one message carries; dump with options.ps so that the memory goes to a page server and only the other images are exported`,
        );
      }
      files.push({ name: entry.name, data });
    }
    return files.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Adds image files to a PAGES checkpoint; with inventory.img among them it becomes a dump.
   * The kind changes last, by replacing meta.json atomically: until then the checkpoint stays
   * unrestorable, and files of a failed import are removed again.
   */
  async importImages(
    id: string,
    files: readonly ImageFileData[],
    rootPid: number,
    durability: Durability = "fsync",
  ): Promise<CheckpointInfo> {
    const info = await this.get(id);
    if (info.kind !== "pages") {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${id} is not of kind PAGES; images are imported only into a page server's checkpoint`,
      );
    }
    const seen = new Set<string>();
    for (const file of files) {
      if (!isImageName(file.name)) {
        throw invalidArgument(
          `files: ${quote(file.name.slice(0, 64))} is not the name of one of CRIU's image files`,
        );
      }
      if (seen.has(file.name)) throw invalidArgument(`files: ${file.name} is given twice`);
      seen.add(file.name);
    }
    if ((this.#inUse.get(id) ?? 0) > 0 || this.#importing.has(id)) {
      throw new GatewayError("FAILED_PRECONDITION", `checkpoint ${id} is in use; try again when it is not`);
    }
    this.#importing.add(id);
    this.#acquire(id);
    const dir = join(this.root, id);
    const written: string[] = [];
    try {
      for (const file of files) {
        if (await pathExists(join(dir, file.name))) {
          throw new GatewayError(
            "ALREADY_EXISTS",
            `checkpoint ${id} already holds ${file.name}; not replaced`,
          );
        }
      }
      for (const file of files) {
        // "wx": never follows or replaces anything that appeared meanwhile.
        await fs.writeFile(join(dir, file.name), file.data, { flag: "wx", mode: FILE_MODE });
        written.push(file.name);
      }
      const complete = seen.has("inventory.img");
      const meta: Partial<MetaFile> = JSON.parse(
        await fs.readFile(join(dir, META_FILE), { encoding: "utf8", flag: readNoFollow }),
      );
      // Marked as soon as anything was imported: restores and dumps on it are then for admins.
      const updated = {
        ...meta,
        kind: complete ? "dump" : "pages",
        rootPid: rootPid || meta.rootPid || 0,
        importedImages: true,
        durability,
      };
      const tmp = join(dir, `.${META_FILE}-${randomBytes(6).toString("hex")}`);
      await fs.writeFile(tmp, `${JSON.stringify(updated, null, 2)}\n`, { mode: FILE_MODE });
      await settleTree(dir, durability);
      await fs.rename(tmp, join(dir, META_FILE));
      if (durability !== "none") await syncDir(dir);
      return await this.get(id);
    } catch (err) {
      for (const name of written) await fs.rm(join(dir, name), { force: true });
      throw err;
    } finally {
      this.#release(id);
      this.#importing.delete(id);
    }
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError("NOT_FOUND", `checkpoint ${id} does not exist`);
}

/**
 * Quotes a caller's string for an error message. Beyond what JSON escapes, DEL, the C1 controls
 * and the bidirectional overrides are escaped too, so a message cannot rewrite a terminal or
 * reorder what a person reads.
 */
function quote(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
