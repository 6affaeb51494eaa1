#!/usr/bin/env node
// A scripted stand-in for `criu swrk <fd>`, for injecting the faults a real CRIU rarely shows.
//
// Usage: fake-criu.mjs swrk 3, with the scenario in FAKE_CRIU_SCENARIO (test/support/fakeCriu.ts
// writes a wrapper script per scenario). It talks SOCK_SEQPACKET on the given fd through the
// project's native addon and encodes with protobufjs from proto/criu/rpc.proto, like the gateway.
//
// Environment:
//   FAKE_CRIU_SCENARIO     see SCENARIOS below
//   FAKE_CRIU_LOG          optional file: one JSON line per event (requests, notify answers)
//   FAKE_CRIU_PAUSE_AFTER  notify: after this callback is answered, wait for SIGUSR1 before going on
//   FAKE_CRIU_NOTIFY_SCRIPTS  notify: comma-separated callbacks for a DUMP
//                             (default pre-dump,network-lock,post-dump)
import { appendFileSync, closeSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, "..", "..");
const native = createRequire(import.meta.url)(join(projectRoot, "build", "Release", "seqpacket.node"));
const root = protobuf.loadSync(join(projectRoot, "proto", "criu", "rpc.proto"));
const reqType = root.lookupType("criu_req");
const respType = root.lookupType("criu_resp");
const T = root.lookupEnum("criu_req_type").values;

const SCENARIOS = [
  "ok", // every request answered with success of its own type; VERSION carries a version
  "crash", // reads the request, then dies of SIGSEGV
  "exit-silently", // reads the request, says something on stderr, exits 1 without answering
  "garbage", // answers with bytes that are not a criu_resp
  "truncated", // answers with the first half of a valid criu_resp
  "wrong-type", // answers with a DUMP-typed response, whatever was asked
  "slow", // never answers; ignores end-of-stream and SIGTERM: only SIGKILL ends it
  "notify", // a DUMP gets NOTIFY callbacks; succeeds only if every callback was answered with success
  "notify-fd", // sends NOTIFY orphan-pts-master with an fd (this script, opened read-only), then success
  "ignore-eof", // like ok, but keeps running after end-of-stream; only SIGKILL ends it
  "error-answer", // answers with type EMPTY, success=false, cr_errmsg "Invalid req", like CRIU's send_criu_err
  "criu-loop", // CRIU's request loop: one request per worker unless keep_open (only for the request
  // types CRIU allows it: otherwise exit unanswered), PRE_DUMP answered then the next PRE_DUMP or
  // a DUMP awaited on the same socket ("Bad req seq" otherwise); FEATURE_CHECK reports mem_track
];

const scenario = process.env.FAKE_CRIU_SCENARIO ?? "";
const logPath = process.env.FAKE_CRIU_LOG;

function log(entry) {
  if (logPath) appendFileSync(logPath, `${JSON.stringify(entry)}\n`);
}

function die(message) {
  process.stderr.write(`fake-criu: ${message}\n`);
  process.exit(2);
}

if (!SCENARIOS.includes(scenario)) die(`unknown FAKE_CRIU_SCENARIO ${JSON.stringify(scenario)}`);
if (process.argv[2] !== "swrk" || !/^\d+$/.test(process.argv[3] ?? "")) die("usage: fake-criu.mjs swrk <fd>");
const fd = Number(process.argv[3]);

// Datagrams in arrival order; `next()` resolves with one, or null at end-of-stream.
const inbox = [];
let ended = false;
let wake;
const channel = new native.Channel(
  fd,
  (data, fds) => {
    inbox.push({ data, fds });
    wake?.();
  },
  (errno) => {
    ended = true;
    log({ event: "end", errno });
    wake?.();
  },
);

async function next() {
  for (;;) {
    if (inbox.length > 0) return inbox.shift();
    if (ended) return null;
    await new Promise((resolve) => {
      wake = resolve;
    });
    wake = undefined;
  }
}

function send(resp, fds = []) {
  channel.send(Buffer.from(respType.encode(respType.fromObject(resp)).finish()), fds);
}

function sendRaw(bytes) {
  channel.send(bytes);
}

function decode(bytes) {
  return reqType.toObject(reqType.decode(bytes), { enums: Number, longs: Number, defaults: false });
}

function keepAlive() {
  setInterval(() => {}, 1 << 30);
}

let usr1 = 0;
process.on("SIGUSR1", () => {
  usr1++;
  wake?.();
});
async function sigusr1() {
  while (usr1 === 0) {
    await new Promise((resolve) => {
      wake = resolve;
    });
    wake = undefined;
  }
  usr1--;
}

const VERSION = { majorNumber: 4, minorNumber: 1, sublevel: 1, gitid: "fake-criu", name: "fake" };

// CRIU's chk_keepopen_req: the requests that may keep the worker for another.
const KEEP_OPEN_TYPES = [
  T.PAGE_SERVER,
  T.PAGE_SERVER_CHLD,
  T.CPUINFO_DUMP,
  T.CPUINFO_CHECK,
  T.FEATURE_CHECK,
  T.VERSION,
];

async function criuLoop() {
  for (;;) {
    const datagram = await next();
    if (datagram === null) return;
    let req = decode(datagram.data);
    logRequest(req);
    if (req.keepOpen === true && !KEEP_OPEN_TYPES.includes(req.type)) return; // exits unanswered
    if (req.type === T.PRE_DUMP) {
      while (req.type === T.PRE_DUMP) {
        send({ type: T.PRE_DUMP, success: true });
        const following = await next();
        if (following === null) return;
        req = decode(following.data);
        logRequest(req);
      }
      if (req.type !== T.DUMP) {
        send({ type: T.EMPTY, success: false, crErrmsg: "Bad req seq" });
        return;
      }
      send(success(req));
      return;
    }
    if (req.type === T.FEATURE_CHECK)
      send({ ...success(req), features: { memTrack: true, lazyPages: false, pidfdStore: false } });
    else send(success(req));
    if (req.keepOpen !== true) return;
  }
}

function logRequest(req) {
  log({
    event: "request",
    type: req.type,
    keepOpen: req.keepOpen === true,
    pid: process.pid,
    ...(req.opts?.parentImg === undefined ? {} : { parentImg: req.opts.parentImg }),
  });
}

function success(req) {
  const resp = { type: req.type, success: true };
  if (req.type === T.VERSION) resp.version = VERSION;
  if (req.type === T.FEATURE_CHECK) resp.features = { memTrack: false, lazyPages: false, pidfdStore: false };
  if (req.type === T.DUMP) resp.dump = { restored: false };
  if (req.type === T.RESTORE) resp.restore = { pid: 4242 };
  return resp;
}

async function notifyDump(req) {
  const scripts = (process.env.FAKE_CRIU_NOTIFY_SCRIPTS ?? "pre-dump,network-lock,post-dump").split(",");
  for (const script of scripts) {
    send({ type: T.NOTIFY, success: true, notify: { script, pid: 4242 } });
    const datagram = await next();
    if (datagram === null) return; // the client went away mid-dump: nothing to answer
    const answer = decode(datagram.data);
    const notifySuccess = answer.notifySuccess === true;
    log({ event: "notify-answer", script, type: answer.type, notifySuccess });
    if (answer.type !== T.NOTIFY || !notifySuccess) {
      send({ type: req.type, success: false, crErrno: 125, crErrmsg: `${script} callback failed` });
      return;
    }
    if (process.env.FAKE_CRIU_PAUSE_AFTER === script) await sigusr1();
  }
  send(success(req));
}

async function serve() {
  if (scenario === "slow") {
    process.on("SIGTERM", () => {});
    keepAlive();
  }
  if (scenario === "ignore-eof") process.on("SIGTERM", () => {});
  if (scenario === "criu-loop") {
    await criuLoop();
    process.exit(0);
  }
  for (;;) {
    const datagram = await next();
    if (datagram === null) break;
    for (const extra of datagram.fds) closeSync(extra);
    const req = decode(datagram.data);
    log({ event: "request", type: req.type, keepOpen: req.keepOpen === true });
    switch (scenario) {
      case "ok":
      case "ignore-eof":
        send(success(req));
        break;
      case "crash":
        process.kill(process.pid, "SIGSEGV");
        return;
      case "exit-silently":
        process.stderr.write(
          "fake-criu: Error (criu/cr-service.c:1): cannot serve this request, giving up\n",
        );
        process.exit(1);
        break;
      case "garbage": {
        const bytes = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assertUndecodable(bytes);
        sendRaw(bytes);
        break;
      }
      case "truncated": {
        const whole = respType
          .encode(
            respType.fromObject({
              ...success({ type: T.VERSION }),
              version: { ...VERSION, name: "x".repeat(40) },
            }),
          )
          .finish();
        const half = Buffer.from(whole.subarray(0, Math.floor(whole.length / 2)));
        assertUndecodable(half);
        sendRaw(half);
        break;
      }
      case "wrong-type":
        send({ type: T.DUMP, success: true, dump: { restored: false } });
        break;
      case "slow":
        break; // never answer
      case "notify":
        if (req.type === T.DUMP) await notifyDump(req);
        else send(success(req));
        break;
      case "notify-fd": {
        const passed = openSync(fileURLToPath(import.meta.url), "r");
        send({ type: T.NOTIFY, success: true, notify: { script: "orphan-pts-master", pid: 4242 } }, [passed]);
        closeSync(passed);
        const datagram = await next();
        if (datagram === null) return;
        const answer = decode(datagram.data);
        log({
          event: "notify-answer",
          script: "orphan-pts-master",
          notifySuccess: answer.notifySuccess === true,
        });
        send(success(req));
        break;
      }
      case "error-answer":
        send({ type: T.EMPTY, success: false, crErrmsg: "Invalid req" });
        break;
    }
  }
  if (scenario === "ignore-eof") {
    log({ event: "ignoring-eof" });
    keepAlive();
    return;
  }
  if (scenario !== "slow") process.exit(0);
}

function assertUndecodable(bytes) {
  try {
    respType.decode(bytes);
  } catch {
    return;
  }
  die("the fault to inject decodes as a valid criu_resp");
}

serve().catch((err) => die(err?.stack ?? String(err)));
