// What a restore on behalf of a caller who is not an administrator may re-create.
//
// CRIU restores as root: it re-opens the files a process had open by their recorded paths, maps
// files back, binds unix sockets to their paths, all with root's powers and whatever sits at those
// paths by then. A caller who controls a path (a symlink put where a file was after the dump) could
// so get a restored process holding a file its own credentials could never open. Two checks keep a
// confined restore to what the restored processes could have done themselves:
// - before CRIU starts, on the checkpoint's images: a unix socket bound to a filesystem path is
//   refused, since CRIU would remove the socket now at that path and bind its own there, as root;
// - at CRIU's post-restore callback, when the tree is re-created but has not run an instruction of
//   its own: every descriptor, file mapping, working and root directory of every restored process
//   is judged against the credentials recorded for it at the dump, as the kernel judges an open(2)
//   by those credentials. One the process could not have opened vetoes the restore; CRIU then kills
//   the tree.
import { promises as fs, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { boundUnixSockets, FILES_FILE, ImageFormatError } from "../criu/images.js";
import { GatewayError, permissionDenied } from "../domain/errors.js";
import { type ProcessRecord, processTree } from "../domain/processTree.js";

/** The credentials an open(2) is judged by. */
export interface Credentials {
  fsuid: number;
  fsgid: number;
  groups: readonly number[];
  /** Effective capabilities. */
  capEff: bigint;
}

const CAP_DAC_OVERRIDE = 1n << 1n;
const CAP_DAC_READ_SEARCH = 1n << 2n;

export interface Access {
  read?: boolean;
  write?: boolean;
  /** Search (execute) on a directory. */
  search?: boolean;
}

/** The credentials of a recorded process, or undefined for a record kept before they were. */
export function credentialsOf(record: ProcessRecord): Credentials | undefined {
  const fsuid = record.uids[3];
  const fsgid = record.gids?.[3];
  if (fsuid === undefined || fsgid === undefined || record.groups === undefined) return undefined;
  if (!record.capEff || !/^[0-9a-f]+$/.test(record.capEff)) return undefined;
  return { fsuid, fsgid, groups: record.groups, capEff: BigInt(`0x${record.capEff}`) };
}

/**
 * Whether these credentials may access an inode of this owner and mode, as the kernel's
 * generic_permission decides from the mode bits and CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
 * POSIX ACLs are not read: a file is judged by its mode bits alone.
 */
export function mayAccess(
  cred: Credentials,
  inode: { uid: number; gid: number; mode: number; isDirectory: boolean },
  want: Access,
): boolean {
  const bits = (want.read ? 4 : 0) | (want.write ? 2 : 0) | (want.search ? 1 : 0);
  let granted: number;
  if (cred.fsuid === inode.uid) granted = (inode.mode >> 6) & 7;
  else if (cred.fsgid === inode.gid || cred.groups.includes(inode.gid)) granted = (inode.mode >> 3) & 7;
  else granted = inode.mode & 7;
  if ((granted & bits) === bits) return true;
  if (cred.capEff & CAP_DAC_OVERRIDE) {
    // Overrides everything but executing a file no one may execute.
    return inode.isDirectory || !want.search || (inode.mode & 0o111) !== 0;
  }
  if (cred.capEff & CAP_DAC_READ_SEARCH) {
    return !want.write && (inode.isDirectory || !want.search);
  }
  return false;
}

/**
 * Refuses a checkpoint whose images hold a unix socket bound to a filesystem path. `dir` is the
 * checkpoint's images directory.
 */
export async function checkImagesForConfinedRestore(dir: string, checkpointId: string): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(join(dir, FILES_FILE));
  } catch {
    throw permissionDenied(
      `checkpoint ${checkpointId} has no ${FILES_FILE} to tell what CRIU would open on restoring it, so only an administrator may restore it`,
    );
  }
  let sockets: ReturnType<typeof boundUnixSockets>;
  try {
    sockets = boundUnixSockets(bytes);
  } catch (err) {
    if (err instanceof ImageFormatError) {
      throw new GatewayError(
        "FAILED_PRECONDITION",
        `checkpoint ${checkpointId}'s ${FILES_FILE} is damaged: ${err.message}`,
      );
    }
    throw err;
  }
  const bound = sockets[0];
  if (bound) {
    const where = bound.dir && !bound.path.startsWith("/") ? join(bound.dir, bound.path) : bound.path;
    throw permissionDenied(
      `checkpoint ${checkpointId} holds a unix socket bound to ${where}: CRIU would remove whatever socket is at that path now and bind its own there, as root, so only an administrator may restore it`,
    );
  }
}

/** A file-system object a restored process holds: a descriptor, a mapping, its cwd or root. */
interface Held {
  /** Where /proc shows it, to stat the object itself (not whatever its path names now). */
  procPath: string;
  /** Its path, as /proc names it. */
  path: string;
  what: string;
  want: Access;
}

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_PATH = 0o10000000;

/**
 * Checks the tree CRIU re-created under `rootPid` against the recorded processes: throws
 * PERMISSION_DENIED naming the first object one of them holds that its recorded credentials could
 * not have opened. A restored process is judged by the record of its pid; one the record does not
 * name (a new pid namespace renumbers them) by every recorded process's credentials at once.
 */
export async function checkRestoredTree(rootPid: number, recorded: readonly ProcessRecord[]): Promise<void> {
  const byPid = new Map<number, Credentials>();
  for (const r of recorded) {
    const cred = credentialsOf(r);
    if (!cred) {
      throw permissionDenied(
        "the checkpoint's record of its processes lacks their credentials (it predates them), so only an administrator may restore it",
      );
    }
    byPid.set(r.pid, cred);
  }
  const everyone = [...byPid.values()];
  for (const process of await processTree(rootPid)) {
    const own = byPid.get(process.pid);
    const judges = own ? [own] : everyone;
    for (const held of await heldBy(process.pid)) {
      const denial = await judge(held, judges);
      if (denial) {
        throw permissionDenied(
          `the restored process ${process.pid} would hold ${held.what} ${held.path}, which ${denial}; CRIU opened it as root, and the restore is refused`,
        );
      }
    }
  }
}

/** Why none of `creds` could have opened `held`, or undefined when each could. */
async function judge(held: Held, creds: readonly Credentials[]): Promise<string | undefined> {
  let inode: Stats;
  try {
    inode = await fs.stat(held.procPath);
  } catch {
    // Gone while we looked (a descriptor closed, a process ended): nothing is held.
    return undefined;
  }
  const attrs = { uid: inode.uid, gid: inode.gid, mode: inode.mode, isDirectory: inode.isDirectory() };
  for (const cred of creds) {
    if (!mayAccess(cred, attrs, held.want)) {
      return `its recorded credentials (${describe(cred)}) may not ${verbs(held.want)} it (owner ${inode.uid}:${inode.gid}, mode ${(inode.mode & 0o7777).toString(8)})`;
    }
    const blocked = await unsearchableAncestor(held.path, cred);
    if (blocked)
      return `lies under ${blocked}, which its recorded credentials (${describe(cred)}) may not search`;
  }
  return undefined;
}

/**
 * The first directory on the way to `path` these credentials may not search, if any. A path that
 * is not a reachable absolute one here (deleted, or in another mount namespace) is judged by its
 * inode alone.
 */
async function unsearchableAncestor(path: string, cred: Credentials): Promise<string | undefined> {
  if (!path.startsWith("/") || path.endsWith(" (deleted)")) return undefined;
  const dirs: string[] = [];
  for (let d = dirname(path); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === "/") break;
  }
  for (const d of dirs) {
    let st: Stats;
    try {
      st = await fs.lstat(d);
    } catch {
      return undefined;
    }
    if (!st.isDirectory()) return undefined;
    if (!mayAccess(cred, { uid: st.uid, gid: st.gid, mode: st.mode, isDirectory: true }, { search: true }))
      return d;
  }
  return undefined;
}

/** What one process holds that names a file: descriptors opened by path, file mappings, cwd, root. */
async function heldBy(pid: number): Promise<Held[]> {
  const held: Held[] = [];
  const proc = `/proc/${pid}`;
  for (const [link, what] of [
    ["cwd", "working directory"],
    ["root", "root directory"],
  ] as const) {
    const path = await readlinkOrEmpty(`${proc}/${link}`);
    if (path.startsWith("/")) held.push({ procPath: `${proc}/${link}`, path, what, want: { search: true } });
  }
  let maps = "";
  try {
    maps = await fs.readFile(`${proc}/maps`, "utf8");
  } catch {
    // The process ended while we looked.
  }
  const seen = new Set<string>();
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+-[0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[3] === "0") continue;
    const [, range, perms, , path] = m as unknown as [string, string, string, string, string];
    // Every file mapping needs the file readable; a shared writable one needs it writable too.
    const write = perms[1] === "w" && perms[3] === "s";
    const key = `${path}\0${write}`;
    if (seen.has(key)) continue;
    seen.add(key);
    held.push({
      procPath: `${proc}/map_files/${range}`,
      path,
      what: write ? "a shared writable mapping of" : "a mapping of",
      want: { read: true, write },
    });
  }
  let fds: string[] = [];
  try {
    fds = await fs.readdir(`${proc}/fd`);
  } catch {
    // The process ended while we looked.
  }
  for (const fd of fds) {
    const path = await readlinkOrEmpty(`${proc}/fd/${fd}`);
    // Sockets, pipes and anonymous inodes ("socket:[…]", "pipe:[…]", "anon_inode:…") are not
    // opened by path.
    if (!path.startsWith("/")) continue;
    let flags: number;
    try {
      const info = await fs.readFile(`${proc}/fdinfo/${fd}`, "utf8");
      flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(info)?.[1] ?? "0", 8);
    } catch {
      continue;
    }
    // An O_PATH descriptor grants no access: reopening it checks permissions again.
    if (flags & O_PATH) continue;
    const mode = flags & O_ACCMODE;
    const want: Access = { read: mode !== O_WRONLY, write: mode === O_WRONLY || mode === O_RDWR };
    held.push({ procPath: `${proc}/fd/${fd}`, path, what: `descriptor ${fd} on`, want });
  }
  return held;
}

async function readlinkOrEmpty(path: string): Promise<string> {
  try {
    return await fs.readlink(path);
  } catch {
    return "";
  }
}

function verbs(want: Access): string {
  return [want.read && "read", want.write && "write", want.search && "search"].filter(Boolean).join(" and ");
}

function describe(cred: Credentials): string {
  const caps = cred.capEff === 0n ? "no capabilities" : `capabilities ${cred.capEff.toString(16)}`;
  return `uid ${cred.fsuid}, gid ${cred.fsgid}, ${caps}`;
}
