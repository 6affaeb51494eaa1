// CRIU's statistics images (stats-dump, stats-restore), as the API reports them.
//
// Statistics are a report, not the result: nothing about them may fail a dump CRIU made, whose
// processes may now exist only in its images. So every reader here gives undefined, never throws.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DumpStatistics, RestoreStatistics } from "../../../gen/criu/gateway/v1/gateway.js";
import { decodeStatsImage, STATS_DUMP_FILE, STATS_RESTORE_FILE } from "../../criu/images.js";

/**
 * Read synchronously: CRIU has just written the file (a few hundred bytes, in the page cache), and
 * a read through the thread pool is five round trips (open, fstat, read, read, close).
 */
async function readStats(dir: string, file: string) {
  try {
    return decodeStatsImage(readFileSync(join(dir, file)));
  } catch {
    return undefined;
  }
}

/** The statistics of the dump or pre-dump whose images are in `dir`. */
export async function dumpStatistics(dir: string): Promise<DumpStatistics | undefined> {
  const d = (await readStats(dir, STATS_DUMP_FILE))?.dump;
  if (!d) return undefined;
  return {
    freezingTimeUs: d.freezingTime,
    frozenTimeUs: d.frozenTime,
    memdumpTimeUs: d.memdumpTime,
    memwriteTimeUs: d.memwriteTime,
    pagesScanned: d.pagesScanned,
    pagesSkippedParent: d.pagesSkippedParent,
    pagesWritten: d.pagesWritten,
    irmapResolveTimeUs: d.irmapResolve ?? 0,
    pagesLazy: d.pagesLazy,
    pagePipes: d.pagePipes ?? 0,
    pagePipeBufs: d.pagePipeBufs ?? 0,
    shpagesScanned: d.shpagesScanned ?? 0,
    shpagesSkippedParent: d.shpagesSkippedParent ?? 0,
    shpagesWritten: d.shpagesWritten ?? 0,
  };
}

/** The statistics of the last restore from the images in `dir`. */
export async function restoreStatistics(dir: string): Promise<RestoreStatistics | undefined> {
  const r = (await readStats(dir, STATS_RESTORE_FILE))?.restore;
  if (!r) return undefined;
  return {
    pagesCompared: r.pagesCompared,
    pagesSkippedCow: r.pagesSkippedCow,
    forkingTimeUs: r.forkingTime,
    restoreTimeUs: r.restoreTime,
    pagesRestored: r.pagesRestored ?? 0,
  };
}
