// Decoding of a waitpid() status word, as Linux lays it out (the W* macros of <sys/wait.h>).

export type WaitOutcome =
  | { rawStatus: number; exitCode: number; signal?: undefined }
  | { rawStatus: number; signal: number; exitCode?: undefined }
  /** Stopped or continued: waitpid() without WUNTRACED/WCONTINUED, as CRIU calls it, never says so. */
  | { rawStatus: number; exitCode?: undefined; signal?: undefined };

export function decodeWaitStatus(rawStatus: number): WaitOutcome {
  const low = rawStatus & 0x7f;
  // WIFEXITED: no signal bits; WEXITSTATUS is the second byte.
  if (low === 0) return { rawStatus, exitCode: (rawStatus >> 8) & 0xff };
  // WIFSIGNALED: a signal number in the low 7 bits, and not 0x7f, which marks a stopped process.
  if (low !== 0x7f) return { rawStatus, signal: low };
  return { rawStatus };
}
