// Network servers nobody here wrote, each listening on 127.0.0.1, checkpointed through the gateway
// (killed, and with leave_running), restored, and then asked for what they held before the dump.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { errorDetailOf } from "../../../src/grpc/errorStatus.js";
import { dumpWith, failure } from "../../support/gateway.js";
import {
  canConnect,
  commOf,
  descendants,
  dumpAndRestore,
  ENDINGS,
  freePort,
  httpGet,
  PYTHON,
  requireProgram,
  runProgram,
  type Workload,
  workloadSuite,
} from "../../support/programs.js";
import { waitFor } from "../../support/workload.js";

const suite = workloadSuite();
const { workloads } = suite;

/** A directory to serve with one file of random content, and that content. */
function site(name: string): { root: string; content: string } {
  const root = join(suite.gw.dir, `${name}-www`);
  mkdirSync(root, { recursive: true });
  const content = `${name} ${randomBytes(16).toString("hex")}\n`;
  writeFileSync(join(root, "index.html"), content);
  return { root, content };
}

async function expectServes(port: number, content: string): Promise<void> {
  const res = await httpGet(port, "/index.html");
  expect(res).toEqual({ status: 200, body: content });
}

describe.each(ENDINGS)("servers, dumped and %s", (ending) => {
  it("python3 -m http.server serves the same file after the restore", async () => {
    const port = await freePort();
    const { root, content } = site(`http-${ending}`);
    const w = await workloads.start(suite.gw.dir, `http-server-${ending}`, [
      PYTHON,
      "-m",
      "http.server",
      String(port),
      "--bind",
      "127.0.0.1",
      "--directory",
      root,
    ]);
    await waitFor(() => canConnect(port), "http.server to listen");
    await expectServes(port, content);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      whileRunning: () => expectServes(port, content),
    });
    expect(restored.pid).toBe(w.pid);
    expect(commOf(restored.pid)).toMatch(/^python3/);
    await expectServes(port, content);
  });

  it("python3 -m http.server outside its session leader's tree needs shell_job, then serves the same file", async () => {
    const port = await freePort();
    const { root, content } = site(`http-shell-job-${ending}`);
    const argv = [PYTHON, "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root];
    const w = await workloads.start(suite.gw.dir, `http-shell-job-${ending}`, argv, { session: "outside" });
    await waitFor(() => canConnect(port), "http.server to listen");

    const err = await failure(dumpWith(suite.gw.client, `refused-${ending}`, { pid: w.pid }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(errorDetailOf(err)?.logTail.join("\n")).toContain(
      `The root process ${w.pid} is not a session leader. Consider using --shell-job option`,
    );
    await expectServes(port, content);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      dump: { shellJob: true },
      restore: { shellJob: true },
      whileRunning: () => expectServes(port, content),
    });
    expect(restored.pid).toBe(w.pid);
    await expectServes(port, content);
  });

  it("a Node.js HTTP server answers as before the restore, its request count carried over", async () => {
    const port = await freePort();
    // Counts its requests in memory: the count after the restore shows the process kept its heap.
    const program = `
      let served = 0;
      require("node:http")
        .createServer((req, res) => res.end(String(++served)))
        .listen(Number(process.argv[1]), "127.0.0.1");
    `;
    const w = await workloads.start(suite.gw.dir, `node-${ending}`, [
      process.execPath,
      "-e",
      program,
      String(port),
    ]);
    await waitFor(() => canConnect(port), "the Node.js server to listen");
    expect((await httpGet(port)).body).toBe("1");

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      whileRunning: async () => expect((await httpGet(port)).body).toBe("2"),
    });
    expect(restored.pid).toBe(w.pid);
    // The restored heap is the one at the dump: one request served, whatever the original served after.
    expect((await httpGet(port)).body).toBe("2");
  });

  it("redis-server has every key written before the dump", async () => {
    const redisServer = requireProgram("/usr/bin/redis-server", "redis-server");
    const cli = requireProgram("/usr/bin/redis-cli", "redis-tools");
    const port = await freePort();
    const w = await workloads.start(suite.gw.dir, `redis-${ending}`, [
      redisServer,
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      suite.gw.dir,
    ]);
    const redis = (...args: string[]) => runProgram(cli, ["-p", String(port), "--raw", ...args]);
    await waitFor(async () => (await redis("PING").catch(() => "")).trim() === "PONG", "redis to answer");

    const keys = Array.from({ length: 2_000 }, (_, i) => `key:${i}`);
    const values = keys.map((k) => `${k}=${randomBytes(8).toString("hex")}`);
    const commands = keys.map((k, i) => `SET ${k} ${values[i]}\r\n`).join("");
    await runProgram(cli, ["-p", String(port), "--pipe"], commands);
    const expectAllKeys = async () => {
      expect((await redis("DBSIZE")).trim()).toBe("2000");
      expect((await redis("MGET", ...keys)).trim().split("\n")).toEqual(values);
    };
    await expectAllKeys();

    // Nothing is saved to disk (--save ""): the keys come back from the checkpoint's memory.
    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, { whileRunning: expectAllKeys });
    expect(restored.pid).toBe(w.pid);
    expect(commOf(restored.pid)).toBe("redis-server");
    await expectAllKeys();
  });

  it("nginx comes back as a master with its two workers, listening, and serves the same file", async () => {
    const nginx = requireProgram("/usr/sbin/nginx", "nginx");
    const port = await freePort();
    const name = `nginx-${ending}`;
    const { root, content } = site(name);
    const prefix = join(suite.gw.dir, name);
    mkdirSync(prefix, { recursive: true });
    // Everything nginx writes (pid file, logs, temp files) is under its own prefix in the temp dir;
    // `user root`: its workers read the site in the gateway's temp dir, which only root may enter.
    writeFileSync(
      join(prefix, "nginx.conf"),
      `daemon off;
      master_process on;
      worker_processes 2;
      user root;
      pid ${prefix}/nginx.pid;
      error_log ${prefix}/error.log;
      events { worker_connections 64; }
      http {
        access_log ${prefix}/access.log;
        client_body_temp_path ${prefix}/client_body;
        proxy_temp_path ${prefix}/proxy;
        fastcgi_temp_path ${prefix}/fastcgi;
        uwsgi_temp_path ${prefix}/uwsgi;
        scgi_temp_path ${prefix}/scgi;
        server { listen 127.0.0.1:${port}; root ${root}; }
      }
      `,
    );
    const w: Workload = await workloads.start(suite.gw.dir, name, [
      nginx,
      "-p",
      `${prefix}/`,
      "-c",
      join(prefix, "nginx.conf"),
      "-e",
      join(prefix, "error.log"),
    ]);
    await waitFor(() => canConnect(port), "nginx to listen");
    await waitFor(() => descendants(w.pid).length === 2, "nginx to start its two workers");
    const workers = descendants(w.pid).sort();
    await expectServes(port, content);

    const restored = await dumpAndRestore(suite.gw, workloads, w, ending, {
      whileRunning: () => expectServes(port, content),
    });
    expect(restored.pid).toBe(w.pid);
    expect(commOf(restored.pid)).toBe("nginx");
    expect(descendants(restored.pid).sort()).toEqual(workers);
    await expectServes(port, content);
  });
});
