# The "direct" side of bench/sideBySide.ts: CRIU's own Python client (pycriu, from the CRIU source
# tree) starting `criu swrk` for each request, as a program using CRIU directly would. Reads one
# JSON command per line on stdin, answers one JSON line on stdout with the time the request took
# inside this process (so the pipe to the benchmark is not counted).
#
# argv: DIR holding the pycriu package (criu.py and a protoc-made rpc_pb2.py), the criu binary.
import json
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
import pycriu.criu as pycriu  # noqa: E402

CRIU_BIN = sys.argv[2]


def client(images_dir):
    c = pycriu.criu()
    c.use_binary(CRIU_BIN)
    if images_dir is not None:
        fd = os.open(images_dir, os.O_RDONLY | os.O_DIRECTORY)
        # pycriu forks and execs criu, which must inherit the descriptor.
        os.set_inheritable(fd, True)
        c.opts.images_dir_fd = fd
        c.opts.log_file = "dump.log"
    return c


def close_dir(c):
    if c.opts.images_dir_fd >= 0:
        os.close(c.opts.images_dir_fd)


def fsync_tree(images_dir):
    # What a careful caller of CRIU does before it trusts the images: every file, then the directory.
    for name in os.listdir(images_dir):
        fd = os.open(os.path.join(images_dir, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(images_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run(cmd):
    op = cmd["op"]
    if op == "version":
        c = client(None)
        # pycriu has no version() helper; its request path is the same for every request type.
        req = pycriu.rpc.criu_req(type=pycriu.rpc.VERSION)
        start = time.perf_counter()
        resp = c._send_req_and_recv_resp(req)
        if not resp.success:
            raise RuntimeError("VERSION failed")
        return {"ms": (time.perf_counter() - start) * 1000}
    if op == "dump":
        c = client(cmd["dir"])
        c.opts.pid = cmd["pid"]
        c.opts.leave_running = cmd.get("leave_running", False)
        try:
            start = time.perf_counter()
            c.dump()
            if cmd.get("fsync", False):
                fsync_tree(cmd["dir"])
            return {"ms": (time.perf_counter() - start) * 1000}
        finally:
            close_dir(c)
    if op == "restore":
        c = client(cmd["dir"])
        c.opts.log_file = "restore.log"
        try:
            start = time.perf_counter()
            resp = c.restore()
            return {"ms": (time.perf_counter() - start) * 1000, "pid": resp.pid}
        finally:
            close_dir(c)
    raise ValueError("unknown op %r" % op)


for line in sys.stdin:
    try:
        answer = run(json.loads(line))
    except Exception as e:  # reported, and the benchmark stops
        answer = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
