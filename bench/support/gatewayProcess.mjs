// A gateway in a process of its own, so that a benchmark can read each gateway's memory alone.
// argv[2]: the configuration (JSON, as resolveConfig takes it). Prints {"addresses": [...]} once
// listening; then answers each line on stdin: "reset" clears the peak RSS (VmHWM), "rss" prints
// {"rssBytes", "peakBytes", "maxBufferedChunks", "cpuSeconds"}; stdin closing stops it.
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { startGateway } from "../../dist/src/app/startGateway.js";
import { resolveConfig } from "../../dist/src/config.js";
import { silentLogger } from "../../dist/src/log.js";

const gateway = await startGateway(resolveConfig(JSON.parse(process.argv[2])), silentLogger);
process.stdout.write(`${JSON.stringify({ addresses: gateway.addresses })}\n`);

function status(field) {
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+)/.exec(line ?? "")?.[1] ?? 0) * 1024;
}

function cpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "reset") {
    // "5" resets the peak resident set size to the current one (proc(5), clear_refs).
    writeFileSync("/proc/self/clear_refs", "5");
    gateway.transferStats().maxBuffered = 0;
    gateway.transferStats().maxPerStream = 0;
    process.stdout.write("{}\n");
  } else if (line === "rss") {
    process.stdout.write(
      `${JSON.stringify({ rssBytes: status("VmRSS"), peakBytes: status("VmHWM"), maxBufferedChunks: gateway.transferStats().maxBuffered, cpuSeconds: cpuSeconds() })}\n`,
    );
  }
}
await gateway.shutdown(1000);
