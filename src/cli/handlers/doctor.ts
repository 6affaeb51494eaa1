// `criu-gateway doctor`: what this host can and cannot do for CRIU, read here, with no gateway
// running (a running gateway's Check carries the same findings).
import { release } from "node:os";
import { defaultCriuBin } from "../../config.js";
import { diagnoseHost, systemReaders } from "../../domain/hostDoctor.js";
import type { HostFinding } from "../../domain/hostFindings.js";
import type { Args } from "../command.js";
import type { DOCTOR_OPTIONS } from "../commands/serve.js";

/** One finding per paragraph: name, state, what was found; then what it blocks and its fix. */
export function formatFindings(findings: HostFinding[]): string {
  const width = Math.max(...findings.map((f) => f.name.length)) + 2;
  const indent = " ".repeat(width + 10);
  return findings
    .map((f) => {
      const lines = [`${f.name.padEnd(width)}${f.state.toUpperCase().padEnd(10)}${f.detail}`];
      if (f.blocks) lines.push(`${indent}blocks: ${f.blocks}`);
      if (f.fix) lines.push(`${indent}fix:    ${f.fix}`);
      return lines.join("\n");
    })
    .join("\n");
}

/** Runs the doctor; the exit code is 1 when CRIU cannot run at all, else 0. */
export async function doctor({ values }: Args<typeof DOCTOR_OPTIONS>): Promise<number> {
  const criuBin = values.criu ?? defaultCriuBin();
  const findings = await diagnoseHost(systemReaders(criuBin));
  const header = `criu-gateway doctor: ${criuBin} on Linux ${release()}\n\n`;
  process.stdout.write(
    values.json ? `${JSON.stringify(findings, null, 2)}\n` : `${header}${formatFindings(findings)}\n`,
  );
  return findings.some((f) => f.name === "criu" && f.state === "missing") ? 1 : 0;
}
