// A process tree held stopped (SIGSTOP) while a migration decides where it lives: continued where
// it is when the migration fails before the switch, killed once the other host runs it.

/** Signals every process of a stopped tree; a process already gone is not an error. */
export class StoppedTree {
  constructor(readonly pids: readonly number[]) {}

  /** Lets the tree run again (SIGCONT), exactly as it was. */
  resume(): void {
    this.#signal("SIGCONT");
  }

  /** Kills the tree: it lives elsewhere now, or must never run (SIGKILL works on stopped tasks). */
  kill(): void {
    this.#signal("SIGKILL");
  }

  #signal(signal: NodeJS.Signals): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
  }
}
