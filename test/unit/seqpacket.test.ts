// The SOCK_SEQPACKET transport (native/seqpacket.cc via src/criu/seqpacket.ts): whole datagrams,
// fds by SCM_RIGHTS, end-of-stream and the non-blocking send queue.
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { closeFd, type Datagram, SeqpacketSocket, seqpacketPair } from "../../src/criu/seqpacket.js";

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/** The file status flags of one of our fds; the kernel reports close-on-exec there as O_CLOEXEC. */
function fdFlags(fd: number): number {
  const match = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
  if (!match) throw new Error(`no flags line in /proc/self/fdinfo/${fd}`);
  return Number.parseInt(match[1]!, 8);
}

interface Endpoint {
  socket: SeqpacketSocket;
  received: Datagram[];
  /** Resolves with the first `count` datagrams; rejects if the stream ends before they arrive. */
  receive(count: number): Promise<Datagram[]>;
  /** Resolves with onEnd's errno. */
  ended: Promise<number>;
}

const sockets: SeqpacketSocket[] = [];
const fdsToClose: number[] = [];
let scratch = "";

function endpoint(fd: number): Endpoint {
  const received: Datagram[] = [];
  let endErrno: number | undefined;
  let resolveEnded: (errno: number) => void = () => {};
  const ended = new Promise<number>((resolve) => {
    resolveEnded = resolve;
  });
  let waiter: { count: number; resolve: (d: Datagram[]) => void; reject: (e: Error) => void } | undefined;
  const check = () => {
    if (!waiter) return;
    if (received.length >= waiter.count) {
      waiter.resolve(received.slice(0, waiter.count));
      waiter = undefined;
    } else if (endErrno !== undefined) {
      waiter.reject(
        new Error(`stream ended (errno ${endErrno}) after ${received.length} of ${waiter.count}`),
      );
      waiter = undefined;
    }
  };
  const socket = new SeqpacketSocket(fd, {
    onMessage: (datagram) => {
      fdsToClose.push(...datagram.fds);
      received.push(datagram);
      check();
    },
    onEnd: (errno) => {
      endErrno = errno;
      resolveEnded(errno);
      check();
    },
  });
  sockets.push(socket);
  return {
    socket,
    received,
    ended,
    receive: (count) =>
      new Promise<Datagram[]>((resolve, reject) => {
        waiter = { count, resolve, reject };
        check();
      }),
  };
}

function connected(): { a: Endpoint; b: Endpoint } {
  const { ours, theirs } = seqpacketPair();
  return { a: endpoint(ours), b: endpoint(theirs) };
}

/** A datagram of `size` bytes whose content says which one it is. */
function datagram(index: number, size: number): Buffer {
  const buf = Buffer.alloc(size, index & 0xff);
  if (size >= 4) buf.writeUInt32BE(index, 0);
  return buf;
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "seqpacket-test-"));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
  for (const fd of fdsToClose.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // The test closed it already.
    }
  }
});

describe("seqpacketPair", () => {
  test("ours is non-blocking, theirs blocking (as criu swrk expects), both close-on-exec", () => {
    const { ours, theirs } = seqpacketPair();
    try {
      expect(fdFlags(ours) & O_NONBLOCK).toBe(O_NONBLOCK);
      expect(fdFlags(theirs) & O_NONBLOCK).toBe(0);
      expect(fdFlags(ours) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(fdFlags(theirs) & O_CLOEXEC).toBe(O_CLOEXEC);
    } finally {
      closeFd(ours);
      closeFd(theirs);
    }
  });

  test("closeFd closes the descriptor", () => {
    const { ours, theirs } = seqpacketPair();
    closeFd(ours);
    closeFd(theirs);
    expect(() => fstatSync(ours)).toThrow(expect.objectContaining({ code: "EBADF" }));
  });
});

describe("SeqpacketSocket", () => {
  test("keeps datagram boundaries: each send arrives as one intact message, both ways", async () => {
    const { a, b } = connected();
    const sizes = [1, 2, 3, 17, 4096, 4097, 65_539, 5];
    sizes.forEach((size, i) => {
      a.socket.send(datagram(i, size));
    });
    const atB = await b.receive(sizes.length);
    expect(atB.map((d) => d.data.length)).toEqual(sizes);
    atB.forEach((d, i) => {
      expect(d.data.equals(datagram(i, sizes[i]!))).toBe(true);
      expect(d.fds).toEqual([]);
    });

    b.socket.send(Buffer.from("pong"));
    b.socket.send(Uint8Array.from([1, 2, 3]));
    const atA = await a.receive(2);
    expect(atA.map((d) => [...d.data])).toEqual([[...Buffer.from("pong")], [1, 2, 3]]);
    expect(b.received).toHaveLength(sizes.length);
  });

  test("a datagram as large as the kernel accepts arrives whole; a larger one is refused at once", async () => {
    // SOCK_SEQPACKET refuses a datagram larger than the send buffer (wmem_default) less 32 bytes.
    const largest = Number(readFileSync("/proc/sys/net/core/wmem_default", "utf8").trim()) - 32;
    expect(largest).toBeGreaterThan(128 * 1024); // larger than any fixed receive buffer would be
    const { a, b } = connected();
    const big = Buffer.alloc(largest);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    a.socket.send(big);
    expect(() => a.socket.send(Buffer.alloc(largest + 1))).toThrow(
      expect.objectContaining({ code: "EMSGSIZE" }),
    );
    a.socket.send(Buffer.from("after"));
    const [first, second] = await b.receive(2);
    expect(first!.data.length).toBe(largest);
    expect(first!.data.equals(big)).toBe(true);
    expect(second!.data.toString()).toBe("after");
  });

  test("datagrams sent faster than the reader reads are queued and all arrive, in order", async () => {
    // 2000 x 4 KiB is 8 MiB, far beyond the socket buffer, and the reader cannot run until this
    // synchronous loop ends: most sends hit EAGAIN and must wait in the queue.
    const count = 2000;
    const size = 4096;
    const { a, b } = connected();
    for (let i = 0; i < count; i++) a.socket.send(datagram(i, size));
    const got = await b.receive(count);
    expect(got.map((d) => d.data.readUInt32BE(0))).toEqual(Array.from({ length: count }, (_, i) => i));
    for (const [i, d] of got.entries()) {
      if (!d.data.equals(datagram(i, size))) throw new Error(`datagram ${i} arrived damaged`);
    }
  });

  test("an fd passed by SCM_RIGHTS arrives as a new close-on-exec fd for the same file", async () => {
    const path = join(scratch, "passed.txt");
    writeFileSync(path, "passed by SCM_RIGHTS");
    const sent = openSync(path, "r");
    const sentIno = fstatSync(sent).ino;
    const { a, b } = connected();
    a.socket.send(Buffer.from("with fd"), [sent]);
    closeSync(sent); // the kernel holds its own reference once sent
    const [got] = await b.receive(1);
    expect(got!.data.toString()).toBe("with fd");
    expect(got!.fds).toHaveLength(1);
    const fd = got!.fds[0]!;
    expect(fstatSync(fd).ino).toBe(sentIno);
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    const buf = Buffer.alloc(64);
    expect(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString()).toBe("passed by SCM_RIGHTS");
  });

  test("several fds in one datagram arrive in order", async () => {
    const paths = ["one", "two", "three"].map((name) => {
      const path = join(scratch, name);
      writeFileSync(path, name);
      return path;
    });
    const sent = paths.map((path) => openSync(path, "r"));
    const inodes = sent.map((fd) => fstatSync(fd).ino);
    const { a, b } = connected();
    a.socket.send(Buffer.from("three fds"), sent);
    for (const fd of sent) closeSync(fd);
    const [got] = await b.receive(1);
    expect(got!.fds.map((fd) => fstatSync(fd).ino)).toEqual(inodes);
  });

  test("an fd sent while the queue is backed up survives the sender closing its copy", async () => {
    const path = join(scratch, "queued.txt");
    writeFileSync(path, "queued");
    const { a, b } = connected();
    // Fill the socket so the next send is queued (the queue keeps a dup of each fd).
    const filler = 600;
    for (let i = 0; i < filler; i++) a.socket.send(datagram(i, 4096));
    const sent = openSync(path, "r");
    const sentIno = fstatSync(sent).ino;
    a.socket.send(Buffer.from("queued with fd"), [sent]);
    closeSync(sent);
    const got = await b.receive(filler + 1);
    const last = got[filler]!;
    expect(last.data.toString()).toBe("queued with fd");
    expect(last.fds).toHaveLength(1);
    expect(fstatSync(last.fds[0]!).ino).toBe(sentIno);
    expect(got.slice(0, filler).every((d) => d.fds.length === 0)).toBe(true);
  });

  test("the peer closing ends the stream with onEnd(0), after the datagrams it sent", async () => {
    const { a, b } = connected();
    a.socket.send(Buffer.from("1"));
    a.socket.send(Buffer.from("2"));
    a.socket.close();
    expect(await b.ended).toBe(0);
    expect(b.received.map((d) => d.data.toString())).toEqual(["1", "2"]);
    expect(b.socket.isOpen).toBe(false);
  });

  test("send after close throws, on the closed side and on the side that saw the end", async () => {
    const { a, b } = connected();
    a.socket.close();
    expect(a.socket.isOpen).toBe(false);
    expect(() => a.socket.send(Buffer.from("x"))).toThrow(expect.objectContaining({ code: "EBADF" }));
    expect(await b.ended).toBe(0);
    expect(() => b.socket.send(Buffer.from("x"))).toThrow(expect.objectContaining({ code: "EBADF" }));
  });

  test("send to a peer that is gone, before the end is noticed, throws", () => {
    const { a, b } = connected();
    b.socket.close();
    expect(() => a.socket.send(Buffer.from("x"))).toThrow(
      expect.objectContaining({ errno: expect.any(Number) }),
    );
  });

  test("an empty datagram is refused (it would read as end of stream); the socket still works", async () => {
    const { a, b } = connected();
    expect(() => a.socket.send(Buffer.alloc(0))).toThrow(RangeError);
    a.socket.send(Buffer.from("still open"));
    const [got] = await b.receive(1);
    expect(got!.data.toString()).toBe("still open");
    expect(b.received).toHaveLength(1);
  });
});
