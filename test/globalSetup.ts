// Runs once before the suite: the integration tests need root, the native addon and a working
// CRIU. `npm test` installs them first (scripts/bootstrap.sh); here we only fail loudly, never skip.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export default function setup(): void {
  const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("the tests checkpoint real processes and must run as root");
  for (const addon of ["seqpacket", "systemd"]) {
    if (!existsSync(join(root, `build/Release/${addon}.node`)))
      problems.push(`the native ${addon} addon is not built`);
  }
  const criuPathFile = join(root, ".criu/criu-path");
  if (!existsSync(criuPathFile) || !existsSync(readFileSync(criuPathFile, "utf8").trim())) {
    problems.push("no working CRIU was installed (.criu/criu-path)");
  }
  if (problems.length > 0) {
    throw new Error(
      `cannot run the tests: ${problems.join("; ")}. Run them with \`npm test\`, which installs what is missing.`,
    );
  }
}
