// Sockets passed by systemd's socket activation (sd_listen_fds(3)): descriptors 3, 4, … named by
// LISTEN_FDNAMES, meant for the process whose pid is LISTEN_PID.
import { systemdAddon } from "./native.js";

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface InheritedSocket {
  fd: number;
  /** The socket unit's FileDescriptorName= (systemd's default: the socket unit's name). */
  name: string;
}

/**
 * The sockets systemd passed to process `pid`, from its environment; none when LISTEN_PID names
 * another process (the variables were inherited, not meant for us). Throws when the variables
 * contradict each other.
 */
export function parseListenFds(env: NodeJS.ProcessEnv, pid: number): InheritedSocket[] {
  if (env.LISTEN_PID === undefined || env.LISTEN_FDS === undefined) return [];
  if (!/^\d+$/.test(env.LISTEN_PID) || Number(env.LISTEN_PID) !== pid) return [];
  if (!/^\d+$/.test(env.LISTEN_FDS)) {
    throw new Error(`LISTEN_FDS=${JSON.stringify(env.LISTEN_FDS)} is not a number of descriptors`);
  }
  const count = Number(env.LISTEN_FDS);
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(":");
  if (env.LISTEN_FDNAMES !== undefined && names.length !== count) {
    throw new Error(`LISTEN_FDNAMES names ${names.length} sockets but LISTEN_FDS passes ${count}`);
  }
  return Array.from({ length: count }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: names[i] ?? "unknown",
  }));
}

let taken: InheritedSocket[] | undefined;

/**
 * The sockets systemd passed to this process, claimed once: the variables leave the environment
 * (so CRIU's workers and anything they start never see them) and the descriptors become
 * close-on-exec (so the workers do not hold the gateway's sockets open).
 */
export function takeListenFds(): InheritedSocket[] {
  if (taken) return taken;
  taken = parseListenFds(process.env, process.pid);
  for (const key of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) delete process.env[key];
  for (const socket of taken) systemdAddon().setCloexec(socket.fd);
  return taken;
}
