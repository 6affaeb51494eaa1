// Preloaded into the gateway's process by bench/sideBySide.ts only (node --import): measures the
// event loop's delay with perf_hooks and answers the benchmark over the IPC channel it was started
// with. The gateway itself carries no measuring code, so a served gateway pays nothing for it.
import { monitorEventLoopDelay } from "node:perf_hooks";

if (typeof process.send === "function") {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on("message", (message) => {
    if (message === "reset") {
      histogram.reset();
      process.send({ reset: true });
    } else if (message === "report") {
      process.send({
        p50Ms: histogram.percentile(50) / 1e6,
        p99Ms: histogram.percentile(99) / 1e6,
        maxMs: histogram.max / 1e6,
      });
    }
  });
  // The channel must not keep a gateway that is shutting down alive.
  process.channel?.unref();
}
