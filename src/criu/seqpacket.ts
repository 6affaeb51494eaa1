// Typed access to the native SOCK_SEQPACKET addon (native/seqpacket.cc).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../packageRoot.js";

interface NativeChannel {
  send(data: Buffer, fds?: readonly number[]): void;
  close(): void;
  drain(): void;
  ref(): void;
  unref(): void;
}

interface NativeModule {
  socketpair(stream?: boolean): [number, number];
  closeFd(fd: number): void;
  peerCredentials(fd: number): PeerCredentials;
  mkfifo(path: string, mode: number): void;
  Channel: new (
    fd: number,
    onMessage: (data: Buffer, fds: number[]) => void,
    onEnd: (errno: number) => void,
  ) => NativeChannel;
}

function findAddon(): string {
  const path = join(packageRoot, "build", "Release", "seqpacket.node");
  if (!existsSync(path)) {
    throw new Error(
      "the native seqpacket addon is not built: run `npm run build:native` (npm start does it)",
    );
  }
  return path;
}

const native = createRequire(import.meta.url)(findAddon()) as NativeModule;

/** What the kernel recorded of a unix socket's peer when it connected (SO_PEERCRED). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** The peer credentials of a connected unix socket; throws with the errno's code when there are none. */
export function peerCredentials(fd: number): PeerCredentials {
  return native.peerCredentials(fd);
}

/** A socket pair: `ours` is non-blocking and close-on-exec, `theirs` blocking and close-on-exec. */
export function seqpacketPair(): { ours: number; theirs: number } {
  const [ours, theirs] = native.socketpair();
  return { ours, theirs };
}

/**
 * A SOCK_STREAM pair, for a byte stream CRIU reads and writes through a descriptor it is handed
 * (its page server's `ps-socket`): `ours` is non-blocking and close-on-exec, `theirs` blocking and
 * close-on-exec (a child gets it only through its stdio entry).
 */
export function streamPair(): { ours: number; theirs: number } {
  const [ours, theirs] = native.socketpair(true);
  return { ours, theirs };
}

export function closeFd(fd: number): void {
  native.closeFd(fd);
}

/** Makes a named pipe at `path` (mkfifo(3)); throws with the errno's code, EEXIST when it exists. */
export function makeFifo(path: string, mode: number): void {
  native.mkfifo(path, mode);
}

export interface Datagram {
  data: Buffer;
  /** File descriptors that came with the datagram (SCM_RIGHTS). The receiver must close them. */
  fds: number[];
}

export interface SeqpacketEvents {
  onMessage(datagram: Datagram): void;
  /** The peer closed (errno 0) or the socket failed (errno > 0). Nothing arrives afterwards. */
  onEnd(errno: number): void;
}

/**
 * One end of a SOCK_SEQPACKET socket: whole datagrams in and out, read on the event loop.
 * Takes ownership of `fd`: close() closes it.
 */
export class SeqpacketSocket {
  readonly #channel: NativeChannel;
  #open = true;

  constructor(fd: number, events: SeqpacketEvents) {
    this.#channel = new native.Channel(
      fd,
      (data, fds) => events.onMessage({ data, fds }),
      (errno) => {
        this.#open = false;
        events.onEnd(errno);
      },
    );
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Sends one datagram, with `fds` passed by SCM_RIGHTS. Throws if the socket is closed or broken. */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    this.#channel.send(
      Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length),
      fds,
    );
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#channel.close();
  }

  /**
   * Delivers at once (through onMessage/onEnd) every datagram already queued on the socket,
   * instead of on a later event-loop turn.
   */
  drain(): void {
    if (this.#open) this.#channel.drain();
  }

  /** Lets the process exit while this socket is open (it keeps the loop alive by default). */
  unref(): void {
    this.#channel.unref();
  }

  ref(): void {
    this.#channel.ref();
  }
}
