// Structured logging through pino: one JSON object per line on stderr, with the field names log
// shippers already know (`time` as ISO 8601, `level` as a name, `msg`). Secrets never reach a line:
// key paths and similar fields are redacted wherever they appear in the logged fields.
import { pino, stdTimeFunctions } from "pino";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose every line carries `bindings` too (a call's id and trace id, say). */
  child(bindings: Record<string, unknown>): Logger;
}

/** Field names whose values are secrets or point at them, redacted at any depth the paths cover. */
export const REDACTED_FIELDS = ["keyFile", "key", "password", "token", "authorization"] as const;

const REDACT_PATHS = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

/** A pino logger writing to `write` (stderr by default), at `minLevel` and above. */
export function createLogger(
  minLevel: LogLevel = "info",
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const base = pino(
    {
      level: minLevel,
      base: undefined,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
    },
    { write },
  );
  return wrap(base);
}

function wrap(p: pino.Logger): Logger {
  return {
    log(level, msg, fields = {}) {
      p[level](fields, msg);
    },
    child(bindings) {
      return wrap(p.child(bindings));
    },
  };
}

export const silentLogger: Logger = {
  log() {},
  child() {
    return silentLogger;
  },
};
