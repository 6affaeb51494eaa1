// The host doctor: gathers what hostFindings.ts decides on (files of /proc and /sys, `criu check`)
// through injected readers, and refuses operations that would hit a missing piece before CRIU
// starts, naming the finding instead of leaving the caller CRIU's bare log line.
import { promises as fs } from "node:fs";
import { release } from "node:os";
import { delimiter, join } from "node:path";
import { type CriuCommandResult, parseCriuVersion, runCriu } from "../criu/criuCommand.js";
import { GatewayError } from "./errors.js";
import {
  capSysResourceFinding,
  cgroupFinding,
  criuFinding,
  criuHasSysResource,
  type HostFinding,
  inetSocketsFinding,
  kdatCacheFinding,
  memTrackFinding,
  networkLockFinding,
  pid1Finding,
  pipeMaxSizeFinding,
  userfaultfdFinding,
  type Version,
} from "./hostFindings.js";

/** Where the doctor reads the host; tests inject their own. */
export interface HostReaders {
  criuBin: string;
  /** A file's text, or undefined when it cannot be read. */
  readFile(path: string): Promise<string | undefined>;
  /** The pids of /proc. */
  pids(): Promise<number[]>;
  /** Whether a command is on PATH. */
  onPath(command: string): Promise<boolean>;
  kernelRelease(): string;
  /** Runs the criu binary with these arguments. */
  criu(args: string[]): Promise<CriuCommandResult>;
}

/** The real host. */
export function systemReaders(criuBin: string): HostReaders {
  return {
    criuBin,
    readFile: (path) => fs.readFile(path, "utf8").catch(() => undefined),
    async pids() {
      const names = await fs.readdir("/proc");
      return names.filter((n) => /^\d+$/.test(n)).map(Number);
    },
    async onPath(command) {
      for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
        if (
          await fs.access(join(dir, command), fs.constants.X_OK).then(
            () => true,
            () => false,
          )
        )
          return true;
      }
      return false;
    },
    kernelRelease: release,
    criu: (args) => runCriu(criuBin, args),
  };
}

/** The CRIU version `criu --version` prints, or undefined when it does not run. */
export async function criuVersionOf(readers: HostReaders): Promise<Version | undefined> {
  return parseCriuVersion((await readers.criu(["--version"])).output);
}

async function feature(readers: HostReaders, name: string): Promise<boolean> {
  return (await readers.criu(["check", "--feature", name])).exitCode === 0;
}

/**
 * How many zombies have pid 1 as parent: orphans it has not reaped yet. Its children are listed in
 * /proc/1/task/1/children where the kernel has it; else every process is looked at.
 */
async function zombiesOfPid1(readers: HostReaders): Promise<number> {
  const children = await readers.readFile("/proc/1/task/1/children");
  const pids =
    children === undefined ? await readers.pids() : children.trim().split(/\s+/).filter(Boolean).map(Number);
  let count = 0;
  for (const pid of pids) {
    const stat = await readers.readFile(`/proc/${pid}/stat`);
    if (!stat) continue;
    // After the command's closing parenthesis: state, then ppid.
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (state === "Z" && ppid === "1") count++;
  }
  return count;
}

/** What CRIU says about this host: its version, `criu check`, and the features the findings need. */
export interface CriuAnswers {
  version: Version | undefined;
  check: CriuCommandResult;
  memTrack: boolean;
  uffd: boolean;
  uffdNoncoop: boolean;
  nftablesLock: boolean;
}

export async function askCriu(readers: HostReaders): Promise<CriuAnswers> {
  const [version, check, memTrack, uffd, uffdNoncoop, nftablesLock] = await Promise.all([
    criuVersionOf(readers),
    readers.criu(["check"]),
    feature(readers, "mem_dirty_track"),
    feature(readers, "uffd"),
    feature(readers, "uffd-noncoop"),
    feature(readers, "network_lock_nftables"),
  ]);
  return { version, check, memTrack, uffd, uffdNoncoop, nftablesLock };
}

/**
 * Every finding about this host, in FINDING_NAMES order. CRIU's answers are asked for unless
 * given; the files are read at each call, since sysctls, mounts and zombies change.
 */
export async function diagnoseHost(
  readers: HostReaders,
  answers: Promise<CriuAnswers> = askCriu(readers),
): Promise<HostFinding[]> {
  const [criu, iptables] = await Promise.all([answers, readers.onPath("iptables-restore")]);
  const sysResource = criuHasSysResource((await readers.readFile("/proc/self/status")) ?? "");
  const mounts = (await readers.readFile("/proc/self/mounts")) ?? "";
  return [
    criuFinding(readers.criuBin, criu.version, criu.check),
    inetSocketsFinding(criu.version, readers.kernelRelease()),
    memTrackFinding(criu.memTrack),
    userfaultfdFinding(criu.uffd, criu.uffdNoncoop),
    pipeMaxSizeFinding(await pipeMaxSize(readers), sysResource),
    capSysResourceFinding(sysResource),
    networkLockFinding(iptables, criu.nftablesLock),
    cgroupFinding(mounts),
    pid1Finding(((await readers.readFile("/proc/1/comm")) ?? "").trim(), await zombiesOfPid1(readers)),
    kdatCacheFinding(mounts, (await readers.readFile("/run/criu.kdat")) !== undefined),
  ];
}

/**
 * The findings of a running gateway: CRIU is asked once, the first time, since neither it nor the
 * kernel changes while the gateway runs (six `criu` runs per Check would make Check expensive).
 */
export function hostDoctor(readers: HostReaders): () => Promise<HostFinding[]> {
  let answers: Promise<CriuAnswers> | undefined;
  return () => {
    answers ??= askCriu(readers);
    return diagnoseHost(readers, answers);
  };
}

async function pipeMaxSize(readers: HostReaders): Promise<number | undefined> {
  const text = (await readers.readFile("/proc/sys/fs/pipe-max-size"))?.trim();
  return text && /^\d+$/.test(text) ? Number(text) : undefined;
}

/**
 * FAILED_PRECONDITION naming a finding that is not ok, and its fix. `what` says what cannot run;
 * `instead`, what the caller can do without the fix.
 */
export function findingRefusal(finding: HostFinding, what: string, instead?: string): GatewayError {
  const or = instead ? `; or ${instead}` : "";
  return new GatewayError(
    "FAILED_PRECONDITION",
    `${what}: host finding ${finding.name} is ${finding.state} (${finding.detail}). Fix: ${finding.fix}${or}. \`criu-gateway doctor\` lists every finding`,
  );
}

/**
 * Refuses, before CRIU starts, an operation whose CRIU would serve pages (a dump or page server
 * with lazy_pages) on a host where its page server would die on its first tee(). Read at each call:
 * the sysctl can change while the gateway runs.
 */
export async function requirePageServing(readers: HostReaders, what: string): Promise<void> {
  const sysResource = criuHasSysResource((await readers.readFile("/proc/self/status")) ?? "");
  const finding = pipeMaxSizeFinding(await pipeMaxSize(readers), sysResource);
  if (finding.state !== "ok") throw findingRefusal(finding, `${what}, whose page server cannot run here`);
}
