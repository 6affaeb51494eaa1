// The audit log: one JSON line per CriuService call, denials included.
import { closeSync, openSync, writeSync } from "node:fs";
import type { OptionClass } from "../domain/criuOptions.js";
import type { Logger } from "../log.js";

export interface AuditRecord {
  rpc: string;
  identity: string;
  grant: string | undefined;
  pid: number | undefined;
  checkpoint: string | undefined;
  optionClasses: OptionClass[];
  /** The gRPC status code's name ("OK", "PERMISSION_DENIED", …). */
  result: string;
  durationMs: number;
  error?: string;
}

export interface AuditLog {
  write(record: AuditRecord): void;
  /** Opens the path again (SIGHUP), so that a rotated log is followed by a fresh file. */
  reopen(): void;
  close(): void;
}

/**
 * One JSON line per audit record: to a file opened for appending (0600), or to stderr. If a
 * reopen fails, lines keep going to the file already open.
 */
export function openAuditLog(path: string | undefined, logger: Logger): AuditLog {
  let fd = path === undefined ? 2 : openSync(path, "a", 0o600);
  return {
    write(record) {
      writeSync(fd, `${JSON.stringify({ time: new Date().toISOString(), msg: "audit", ...record })}\n`);
    },
    reopen() {
      if (path === undefined) return;
      try {
        const next = openSync(path, "a", 0o600);
        closeSync(fd);
        fd = next;
      } catch (err) {
        logger.log("error", "audit log not reopened; lines go to the file already open", {
          path,
          error: (err as Error).message,
        });
      }
    },
    close() {
      if (fd !== 2) closeSync(fd);
    },
  };
}
