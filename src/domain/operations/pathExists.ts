import { promises as fs } from "node:fs";

/** Whether `path` can be reached (for /proc/<pid>: whether the process exists). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}
