// TCP connections whose peer (this test process) is not dumped: kept across a restore with
// tcp_established, dropped with tcp_close, and in-flight ones skipped with tcp_skip_in_flight,
// as CRIU documents them. The server is a small python program; its state is a count of the
// lines it has answered, held in memory.
import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { errorDetailOf } from "../../../src/grpc/errorStatus.js";
import { dumpWith, failure, restoreWith } from "../../support/gateway.js";
import {
  dumpAndRestore,
  ENDINGS,
  freePort,
  PYTHON,
  runProgram,
  type Workload,
  workloadSuite,
} from "../../support/programs.js";
import { isAlive, waitFor } from "../../support/workload.js";

// Answers each line with "<count> <LINE>", the count over every connection. With a gate file it
// accepts nothing until the file exists, so connections wait in its accept queue (in flight).
const LINE_SERVER = `
import os, selectors, socket, sys, time
port, ready, gate = int(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
open(ready, "w").close()
while gate and not os.path.exists(gate):
    time.sleep(0.01)
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ)
served = 0
while True:
    for key, _ in sel.select():
        if key.fileobj is srv:
            conn, _ = srv.accept()
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(conn)
            conn.close()
            continue
        for line in data.decode().splitlines():
            served += 1
            conn.sendall(f"{served} {line.upper()}\\n".encode())
`;

/** This test's end of a connection: asks a line, resolves with the answer; records how it ended. */
class LineClient {
  readonly #waiting: ((line: string) => void)[] = [];
  #buffer = "";
  ended: "open" | "end" | "error" = "open";
  errorCode = "";

  private constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      this.#buffer += d;
      for (let i = this.#buffer.indexOf("\n"); i >= 0; i = this.#buffer.indexOf("\n")) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 1);
        this.#waiting.shift()?.(line);
      }
    });
    socket.on("end", () => {
      if (this.ended === "open") this.ended = "end";
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.ended = "error";
      this.errorCode = err.code ?? "";
    });
  }

  static open(port: number): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => resolve(new LineClient(socket)));
      socket.once("error", reject);
    });
  }

  ask(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.socket.write(`${line}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const suite = workloadSuite();
const { workloads } = suite;
const clients: LineClient[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

async function lineServer(name: string, options: { gated?: boolean } = {}) {
  const port = await freePort();
  const ready = join(suite.gw.dir, `${name}.ready`);
  const gate = join(suite.gw.dir, `${name}.gate`);
  const args = [PYTHON, "-c", LINE_SERVER, String(port), ready, ...(options.gated ? [gate] : [])];
  const w: Workload = await workloads.start(suite.gw.dir, name, args);
  await waitFor(() => existsSync(ready), `${name} to listen`);
  return { w, port, gate };
}

async function client(port: number): Promise<LineClient> {
  const c = await LineClient.open(port);
  clients.push(c);
  return c;
}

/** The connections waiting in the accept queue of the socket listening on `port` (ss's Recv-Q). */
async function acceptQueue(port: number): Promise<number> {
  const out = await runProgram("/usr/bin/ss", ["-Hltn", `sport = :${port}`]);
  return Number(out.trim().split(/\s+/)[1]);
}

/** The host's iptables rules (every chain) that drop the packets of the connection between two local ports. */
async function lockRules(a: number, b: number): Promise<string[]> {
  const rules = await runProgram("/usr/sbin/iptables", ["-w", "-S"]);
  return rules
    .split("\n")
    .filter((r) => r.includes("-j DROP"))
    .filter((r) => r.includes(`--sport ${a} --dport ${b}`) || r.includes(`--sport ${b} --dport ${a}`));
}

describe("an established TCP connection, its peer not dumped", () => {
  it("is refused without tcp_established or tcp_close, with CRIU's advice, and the server runs on", async () => {
    const { w, port } = await lineServer("tcp-refused");
    const c = await client(port);
    expect(await c.ask("a")).toBe("1 A");
    const err = await failure(dumpWith(suite.gw.client, "tcp-refused", { pid: w.pid }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toContain(
      "Connected TCP socket, consider using --tcp-established option.",
    );
    expect(isAlive(w.pid)).toBe(true);
    expect(await c.ask("b")).toBe("2 B");
  });

  it("kept with tcp_established: after a dump that killed the server, the restored one answers on it", async () => {
    const { w, port } = await lineServer("tcp-kept");
    const c = await client(port);
    expect(await c.ask("before")).toBe("1 BEFORE");
    const peer = c.socket.localPort ?? 0;
    const locked = () => lockRules(peer, port);
    const restored = await dumpAndRestore(suite.gw, workloads, w, "killed", {
      dump: { tcpEstablished: true },
      restore: { tcpEstablished: true },
      // Between the dump and the restore CRIU keeps the connection locked on the host: its
      // packets are dropped both ways, so the peer's retransmissions meet no reset.
      beforeRestore: async () =>
        expect(await locked()).toEqual([
          expect.stringMatching(new RegExp(`^-A INPUT .* --sport ${peer} --dport ${port} -j DROP$`)),
          expect.stringMatching(new RegExp(`^-A OUTPUT .* --sport ${port} --dport ${peer} -j DROP$`)),
        ]),
    });
    expect(restored.pid).toBe(w.pid);
    expect(await locked()).toEqual([]);
    // The same connection: CRIU closed the dumped socket in repair mode, so the peer saw nothing.
    expect(c.ended).toBe("open");
    expect(await c.ask("after")).toBe("2 AFTER");
    expect(await c.ask("again")).toBe("3 AGAIN");
  });

  it("with tcp_established and leave_running the connection stays with the original, which carries on", async () => {
    const { w, port } = await lineServer("tcp-left");
    const c = await client(port);
    expect(await c.ask("before")).toBe("1 BEFORE");
    const restored = await dumpAndRestore(suite.gw, workloads, w, "leave_running", {
      dump: { tcpEstablished: true },
      restore: { tcpEstablished: true },
      // The dump unlocked the connection again: no rule left, and the original answers on it.
      whileRunning: async () => {
        expect(await lockRules(c.socket.localPort ?? 0, port)).toEqual([]);
        expect(await c.ask("during")).toBe("2 DURING");
      },
    });
    // The original's death closed the connection; the restored server, with the count of the
    // dump, serves new ones.
    await waitFor(() => c.ended !== "open", "the peer to see the original's connection close");
    const fresh = await client(port);
    expect(await fresh.ask("after")).toBe("2 AFTER");
    expect(restored.pid).toBe(w.pid);
  });
});

describe.each(ENDINGS)("tcp_close, dumped and %s", (ending) => {
  it("drops the connection: the peer sees it end, the restored server serves new ones", async () => {
    const { w, port } = await lineServer(`tcp-close-${ending}`);
    const c = await client(port);
    expect(await c.ask("before")).toBe("1 BEFORE");
    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      dump: { tcpClose: true },
      restore: { tcpClose: true },
    });
    expect(restored.pid).toBe(w.pid);
    await waitFor(() => c.ended !== "open", "the peer to see the connection end");
    const fresh = await client(port);
    expect(await fresh.ask("after")).toBe("2 AFTER");
  });
});

describe("tcp_close", () => {
  it("must be given again on restore: CRIU refuses a restore without it", async () => {
    const { w, port } = await lineServer("tcp-close-twice");
    const c = await client(port);
    expect(await c.ask("a")).toBe("1 A");
    await dumpWith(suite.gw.client, "tcp-close-twice", { pid: w.pid, tcpClose: true });
    await w.gone;
    const err = await failure(restoreWith(suite.gw.client, "tcp-close-twice"));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toContain("Need to set the --tcp-close options.");
    expect(existsSync(`/proc/${w.pid}`)).toBe(false);
  });
});

describe.each(ENDINGS)("tcp_skip_in_flight, dumped and %s", (ending) => {
  it("leaves out a connection waiting to be accepted; without it CRIU refuses the dump", async () => {
    const { w, port, gate } = await lineServer(`in-flight-${ending}`, { gated: true });
    const waiting = await client(port);
    await waitFor(async () => (await acceptQueue(port)) === 1, "the connection to wait in the accept queue");

    const err = await failure(dumpWith(suite.gw.client, `refused-${ending}`, { pid: w.pid }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toMatch(/In-flight connection \(l\) for/);
    expect(isAlive(w.pid)).toBe(true);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      dump: { tcpSkipInFlight: true },
    });
    expect(restored.pid).toBe(w.pid);
    // The restored listener's queue is empty: the waiting connection was reset, not carried over.
    expect(await acceptQueue(port)).toBe(0);
    await waitFor(() => waiting.ended === "error", "the waiting connection to be reset");
    expect(waiting.errorCode).toBe("ECONNRESET");
    await runProgram("/usr/bin/touch", [gate]);
    const fresh = await client(port);
    expect(await fresh.ask("after")).toBe("1 AFTER");
  });
});
