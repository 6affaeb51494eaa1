// What an integration test leaves behind, and the checks every teardown makes: the counters it
// started and the processes it restored are ended; no worker, no CRIU child, nothing half-written.
import { readdirSync } from "node:fs";
import { expect } from "vitest";
import { criuChildren, type TestGateway } from "./gateway.js";
import { type Counter, killAndWaitGone, startCounter, waitFor } from "./workload.js";

export class TestProcesses {
  readonly #counters: Counter[] = [];
  readonly #restored: number[] = [];

  /** Starts a counter (see startCounter) that ends with the test. */
  async counter(dir: string, name: string, options?: Parameters<typeof startCounter>[2]): Promise<Counter> {
    return this.adopt(await startCounter(dir, name, options));
  }

  /** A counter started elsewhere, to end with the test. */
  adopt(counter: Counter): Counter {
    this.#counters.push(counter);
    return counter;
  }

  /** A restored process (not our child), to kill and wait for with the test. */
  restored(pid: number): number {
    this.#restored.push(pid);
    return pid;
  }

  /** Ends the counters: they write into a gateway's temp dir, which must not outlive them. */
  async stopCounters(): Promise<void> {
    for (const c of this.#counters.splice(0)) {
      if (c.child.exitCode === null && c.child.signalCode === null) c.kill();
      await c.exited;
    }
  }

  async stopAll(): Promise<void> {
    for (const pid of this.#restored.splice(0)) await killAndWaitGone(pid);
    await this.stopCounters();
  }
}

/**
 * No worker left (at once, since a call returns only after reaping its worker; or, with
 * `waitForWorkers`, soon, for calls the test abandoned), no CRIU child of this process, and no
 * staging or deleting directory in the store.
 */
export async function expectNothingLeft(
  gw: TestGateway,
  options: { waitForWorkers?: boolean } = {},
): Promise<void> {
  if (options.waitForWorkers) {
    await waitFor(() => gw.gateway.workerPids().length === 0, "every worker to be reaped");
  } else {
    expect(gw.gateway.workerPids()).toEqual([]);
  }
  expect(criuChildren()).toEqual([]);
  expect(readdirSync(gw.imagesRoot).filter((n) => n.startsWith("."))).toEqual([]);
}
