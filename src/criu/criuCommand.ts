// CRIU's command line, for what its RPC cannot ask: `criu --version` before any worker runs, and
// `criu check [--feature NAME]`, whose feature list is far longer than FEATURE_CHECK's three.
import { execFile } from "node:child_process";

/** How a `criu` command ended: its exit code (-1 when it could not run) and what it printed. */
export interface CriuCommandResult {
  exitCode: number;
  /** stdout and stderr together, trimmed; CRIU writes its verdicts to either. */
  output: string;
}

/** Runs `criuBin args…`; never throws: a binary that cannot run is exit code -1 with the reason. */
export function runCriu(criuBin: string, args: string[], timeoutMs = 30_000): Promise<CriuCommandResult> {
  return new Promise((resolve) => {
    execFile(criuBin, args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (!err) return resolve({ exitCode: 0, output });
      const code = (err as { code?: unknown }).code;
      resolve(
        typeof code === "number"
          ? { exitCode: code, output }
          : { exitCode: -1, output: output || `cannot run ${criuBin}: ${err.message}` },
      );
    });
  });
}

/** The version `criu --version` prints ("Version: 4.2.1"), as numbers; undefined when it prints none. */
export function parseCriuVersion(output: string): [number, number, number] | undefined {
  const m = /^Version:\s*(\d+)\.(\d+)(?:\.(\d+))?/m.exec(output);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}
