// The post-copy page tunnel without CRIU or gRPC: bytes between two local stream sockets carried
// by messages, page data taken out of a mixed stream, each end's close carried to the other, and
// the daemon's last request told from a connection cut short.
import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { PageRequestWatcher } from "../../src/criu/pageServerRequests.js";
import { streamPair } from "../../src/criu/seqpacket.js";
import { PageTunnel, splitPages } from "../../src/domain/migration/pageTunnel.js";

/** A stream socket pair: `criu` stands for CRIU's end, `gateway` for the tunnel's. */
function pair(): { criu: Socket; gateway: Socket } {
  const { ours, theirs } = streamPair();
  return {
    gateway: new Socket({ fd: ours, readable: true, writable: true, allowHalfOpen: true }),
    criu: new Socket({ fd: theirs, readable: true, writable: true, allowHalfOpen: true }),
  };
}

function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.once("end", () => resolve(Buffer.concat(chunks))));
}

describe("PageTunnel", () => {
  it("carries each side's bytes to the other in order, and each side's close as end-of-file", async () => {
    const left = pair();
    const right = pair();
    const toRight: Uint8Array[] = [];
    // Two tunnels joined directly: what one sends, the other delivers.
    const a: PageTunnel = new PageTunnel(left.gateway, async (data) => {
      toRight.push(data);
      await b.deliver(data);
    });
    const b: PageTunnel = new PageTunnel(right.gateway, (data) => a.deliver(data));
    const atRight = readAll(right.criu);
    const atLeft = readAll(left.criu);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    left.criu.write(big);
    left.criu.end();
    right.criu.end(Buffer.from("request"));
    expect((await atRight).equals(big)).toBe(true);
    expect((await atLeft).toString()).toBe("request");
    // Sent in pieces of at most 1 MiB, then an empty one for the close.
    expect(Math.max(...toRight.map((d) => d.length))).toBeLessThanOrEqual(1024 * 1024);
    expect(toRight.at(-1)?.length).toBe(0);
    await Promise.all([a.remoteEnded, b.remoteEnded]);
    for (const s of [left.criu, right.criu]) s.destroy();
  });

  it("sends end-of-file when CRIU's end goes away while the other side's data is still on its way to it", async () => {
    const { criu, gateway } = pair();
    const sent: number[] = [];
    const tunnel = new PageTunnel(gateway, async (data) => void sent.push(data.length));
    // A CRIU that dies with unread data: the tunnel's writes to it fail rather than end.
    const delivering = tunnel.deliver(Buffer.alloc(8 * 1024 * 1024));
    criu.destroy();
    await expect(delivering).rejects.toThrow("closed");
    await tunnel.closed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual([0]);
  });
});

describe("PageTunnel.hold", () => {
  it("keeps what CRIU writes from the call until release, then sends it in order", async () => {
    const { criu, gateway } = pair();
    const sent: string[] = [];
    let wake: () => void = () => undefined;
    const tunnel = new PageTunnel(gateway, async (data) => {
      sent.push(Buffer.from(data).toString());
      wake();
    });
    tunnel.hold();
    criu.write("request");
    // The bytes reach the gateway's socket; held, they go no further.
    await new Promise<void>((resolve) => gateway.once("data", () => setImmediate(resolve)));
    expect(sent).toEqual([]);
    const arrived = new Promise<void>((resolve) => {
      wake = resolve;
    });
    tunnel.release();
    await arrived;
    expect(sent).toEqual(["request"]);
    criu.destroy();
  });
});

describe("splitPages", () => {
  it("delivers page data as it comes and hands the other messages to the caller, in order", async () => {
    type M = { kind: "restored" } | { kind: "running" } | { kind: "pages"; data: Uint8Array };
    const script: M[] = [
      { kind: "pages", data: Buffer.from("a") },
      { kind: "restored" },
      { kind: "pages", data: Buffer.from("b") },
      { kind: "running" },
    ];
    const delivered: string[] = [];
    const control = splitPages<M>(
      async () => script.shift(),
      async (data) => void delivered.push(Buffer.from(data).toString()),
    );
    expect((await control.next())?.kind).toBe("restored");
    expect((await control.next())?.kind).toBe("running");
    expect(await control.next()).toBeUndefined();
    await control.ended;
    expect(delivered).toEqual(["a", "b"]);
  });

  it("passes the stream's failure to the caller's next read", async () => {
    const control = splitPages<{ kind: "x" }>(
      async () => {
        throw new Error("the call broke");
      },
      async () => undefined,
    );
    await expect(control.next()).rejects.toThrow("the call broke");
    await expect(control.ended).rejects.toThrow("the call broke");
  });
});

describe("PageRequestWatcher", () => {
  const iov = (cmd: number) => {
    const b = Buffer.alloc(32);
    b.writeUInt32LE(cmd, 0);
    return b;
  };
  it("tells a daemon whose last request closed the connection from one cut off", () => {
    const watcher = new PageRequestWatcher();
    watcher.feed(iov(7)); // PS_IOV_GET
    expect(watcher.closed).toBe(false);
    const close = iov(0x1024); // PS_IOV_FORCE_CLOSE
    watcher.feed(close.subarray(0, 5));
    expect(watcher.closed).toBe(false);
    watcher.feed(close.subarray(5));
    expect(watcher.closed).toBe(true);
    watcher.feed(iov((1 << 16) | 7)); // a GET with flags after it: not closed after all
    expect(watcher.closed).toBe(false);
  });
});
