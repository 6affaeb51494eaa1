// Termination signals held while the gateway shuts down. Node ends the process on SIGTERM or
// SIGINT when nothing listens for it: a second signal, after the one that started the shutdown,
// would then kill it mid-publish, losing a dumped process's only images.

const SIGNALS = ["SIGTERM", "SIGINT"] as const;

/** Listens for SIGTERM and SIGINT until the returned function is called, telling `onRepeat` of each. */
export function holdSignals(onRepeat: (signal: string) => void): () => void {
  const listeners = SIGNALS.map((signal) => {
    const listener = () => onRepeat(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}
