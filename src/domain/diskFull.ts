// A full disk (or quota) anywhere in the image store is the caller's RESOURCE_EXHAUSTED, saying
// where and how much is free, whoever hit it: the gateway writing its files, or CRIU its images.

import { promises as fs } from "node:fs";
import { dirname } from "node:path";
import { isErrno } from "./durableFiles.js";
import { GatewayError } from "./errors.js";

// Linux errno values, as CRIU reports them in cr_errno.
const ENOSPC = 28;
const EDQUOT = 122;
const CRIU_SAYS_FULL = /No space left on device|Disk quota exceeded/;

/**
 * `err` as RESOURCE_EXHAUSTED when it says the store's file system is full, else `err` itself.
 * `storeRoot` is where free space is measured when the error names no path.
 */
export async function asDiskFull(err: unknown, storeRoot: string): Promise<unknown> {
  if (isErrno(err, "ENOSPC") || isErrno(err, "EDQUOT")) {
    const path = (err as { path?: unknown }).path;
    const where = typeof path === "string" ? path : storeRoot;
    const what = isErrno(err, "EDQUOT") ? "the disk quota is used up" : "the file system is full";
    return new GatewayError(
      "RESOURCE_EXHAUSTED",
      `the gateway could not write ${where}: ${what} (${await freeSpace(where, storeRoot)}). Free space in the image store (DeleteCheckpoint) and retry`,
      undefined,
      { cause: err },
    );
  }
  if (err instanceof GatewayError && err.code !== "RESOURCE_EXHAUSTED" && err.criu) {
    const { crErrno, crErrmsg, logTail } = err.criu;
    const full =
      crErrno === ENOSPC ||
      crErrno === EDQUOT ||
      CRIU_SAYS_FULL.test(crErrmsg) ||
      logTail.some((line) => CRIU_SAYS_FULL.test(line));
    if (full) {
      return new GatewayError(
        "RESOURCE_EXHAUSTED",
        `CRIU could not write its images into the image store at ${storeRoot}: it is full (${await freeSpace(storeRoot, storeRoot)}); nothing was published and the processes were left running. Free space in the image store (DeleteCheckpoint) and retry`,
        err.criu,
        { cause: err },
      );
    }
  }
  return err;
}

/** "N bytes free", measured on the nearest existing directory of `path`. */
async function freeSpace(path: string, storeRoot: string): Promise<string> {
  for (const candidate of [path, dirname(path), storeRoot]) {
    try {
      const s = await fs.statfs(candidate);
      return `${Number(s.bavail) * Number(s.bsize)} bytes free`;
    } catch {
      // Gone already (a staged directory removed after the failure): try its parent.
    }
  }
  return "free space unknown";
}
