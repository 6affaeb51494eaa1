"""The Python client against a real gateway with real CRIU.

Run by test/integration/pythonClient.test.ts, which starts the gateway and gives its address in
CRIU_GATEWAY_TEST_ADDR and a scratch directory in CRIU_GATEWAY_TEST_DIR. Standard library only
(unittest), so Debian's python3 runs it as it is.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest
from typing import Callable, List

import grpc

import criu_gateway
from criu_gateway import AlreadyExists, Client, FailedPrecondition, GatewayError, NotFound, pb

ADDR = os.environ.get("CRIU_GATEWAY_TEST_ADDR", "")
SCRATCH = os.environ.get("CRIU_GATEWAY_TEST_DIR", "")
# The same gateway on TCP with mutual TLS, and the CA and client certificate it trusts.
TLS_ADDR = os.environ.get("CRIU_GATEWAY_TEST_TLS_ADDR", "")
CERTS = os.environ.get("CRIU_GATEWAY_TEST_CERTS", "")

# Single-threaded, its own session, no pipes to the outside: CRIU dumps it without options. The
# count is rewritten in place through one descriptor, so a restored counter counts on.
COUNTER = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
n = 0
while True:
    os.pwrite(fd, str(n).ljust(20).encode(), 0)
    n += 1
    time.sleep(0.01)
"""


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    """Polls a condition until it holds; fails the test naming what never happened."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Counter:
    def __init__(self, name: str) -> None:
        self.path = os.path.join(SCRATCH, f"{name}.txt")
        self.child = subprocess.Popen(
            [sys.executable, "-c", COUNTER, self.path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.child.pid
        wait_for(lambda: self.read() > 0, "the counter to count")

    def read(self) -> int:
        try:
            with open(self.path) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0

    def counts_on(self) -> None:
        now = self.read()
        wait_for(lambda: self.read() > now, "the counter to count on")


def kill_and_wait_gone(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), f"pid {pid} to be reaped")


class ClientTest(unittest.TestCase):
    gw: Client

    @classmethod
    def setUpClass(cls) -> None:
        if not ADDR or not SCRATCH or not TLS_ADDR or not CERTS:
            raise RuntimeError(
                "CRIU_GATEWAY_TEST_ADDR, _DIR, _TLS_ADDR and _CERTS must be set (pythonClient.test.ts sets them)"
            )
        cls.gw = Client(ADDR, timeout_s=60)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.gw.close()

    def setUp(self) -> None:
        self.counters: List[Counter] = []
        self.restored: List[int] = []

    def tearDown(self) -> None:
        for pid in self.restored:
            kill_and_wait_gone(pid)
        for c in self.counters:
            if c.child.poll() is None:
                c.child.kill()
            c.child.wait()
        for checkpoint in self.gw.list_checkpoints():
            self.gw.delete_checkpoint(checkpoint.checkpoint_id)

    def counter(self, name: str) -> Counter:
        c = Counter(name)
        self.counters.append(c)
        return c

    def test_reports_the_versions_of_criu_and_the_gateway(self) -> None:
        v = self.gw.version()
        self.assertGreaterEqual(v.major_number, 4)
        self.assertRegex(v.gateway_version, r"^\d+\.\d+\.\d+")

    def test_dumps_a_process_and_restores_it_counting_on(self) -> None:
        c = self.counter("restore-me")
        dumped = self.gw.dump("counted", pid=c.pid, log_level=4)
        self.assertEqual(dumped.checkpoint.checkpoint_id, "counted")
        self.assertEqual(dumped.checkpoint.kind, pb.CHECKPOINT_KIND_DUMP)
        self.assertGreater(dumped.statistics.pages_written, 0)
        c.child.wait(timeout=20)  # the dump ended the tree (no leave_running); reaped, its pid is free
        at_dump = c.read()

        scripts: List[str] = []
        restored = self.gw.restore("counted", callbacks=lambda callback: scripts.append(callback.script))
        self.restored.append(restored.pid)
        self.assertEqual(scripts[0], "pre-restore")
        self.assertIn("post-restore", scripts)
        self.assertEqual(restored.pid, c.pid)
        wait_for(lambda: c.read() > at_dump, "the restored counter to count on")
        self.assertEqual([x.checkpoint_id for x in self.gw.list_checkpoints()], ["counted"])
        self.assertIn("Dumping finished successfully", self.gw.checkpoint_log("counted", "dump").text)

    def test_a_vetoed_callback_fails_the_dump_and_the_process_runs_on(self) -> None:
        c = self.counter("veto-me")
        session = self.gw.dump_session("vetoed", pid=c.pid)
        with self.assertRaises(FailedPrecondition) as raised, session:
            for callback in session:
                if callback.script == "post-dump":
                    callback.veto()
                else:
                    callback.approve()
        self.assertEqual([cb.script for cb in session.callbacks][-1], "post-dump")
        self.assertTrue(session.operation_id)
        self.assertEqual(raised.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(NotFound):
            self.gw.get_checkpoint("vetoed")
        c.counts_on()

    def test_a_callback_object_answers_by_script_name(self) -> None:
        c = self.counter("hooked")
        seen: List[str] = []

        class Hooks:
            def on_callback(self, callback: criu_gateway.Callback) -> None:
                seen.append(callback.script)

            def post_dump(self, callback: criu_gateway.Callback) -> bool:
                seen.append(callback.script)
                return True

        dumped = self.gw.dump("hooked", pid=c.pid, leave_running=True, callbacks=Hooks())
        self.assertTrue(dumped.checkpoint.leave_running)
        self.assertEqual(seen[0], "pre-dump")
        self.assertIn("post-dump", seen)
        c.counts_on()

    def test_an_exception_in_a_callback_vetoes_and_is_raised_again(self) -> None:
        c = self.counter("raising")

        def refuse(callback: criu_gateway.Callback) -> None:
            if callback.script == "pre-dump":
                raise LookupError("no volume snapshot")

        with self.assertRaises(LookupError) as raised:
            self.gw.dump("raising", pid=c.pid, callbacks=refuse)
        self.assertIsInstance(raised.exception.__cause__, FailedPrecondition)
        with self.assertRaises(NotFound):
            self.gw.get_checkpoint("raising")
        c.counts_on()

    def test_criu_failures_carry_criu_errno_and_log_tail(self) -> None:
        c = self.counter("still-running")
        self.gw.dump("running", pid=c.pid, leave_running=True)
        # Restoring while the original still runs: CRIU finds its pid taken.
        with self.assertRaises(AlreadyExists) as raised:
            self.gw.restore("running")
        err = raised.exception
        self.assertTrue(err.from_criu)
        self.assertEqual(err.request_type, "RESTORE")
        self.assertEqual(err.cr_errno, 17)
        self.assertEqual(err.errno_name, "EEXIST")
        self.assertRegex("\n".join(err.log_tail), r"File exists|Restoring FAILED")
        self.assertIn("errno 17 EEXIST", str(err))
        c.counts_on()

    def test_gateway_refusals_are_typed_errors_without_criu_details(self) -> None:
        with self.assertRaises(NotFound) as raised:
            self.gw.get_checkpoint("no-such-checkpoint")
        self.assertIsInstance(raised.exception, GatewayError)
        self.assertFalse(raised.exception.from_criu)
        self.assertEqual(raised.exception.log_tail, ())
        with self.assertRaises(criu_gateway.InvalidArgument):
            self.gw.get_checkpoint("../etc")

    def test_an_unknown_option_is_refused_before_any_call(self) -> None:
        with self.assertRaisesRegex(TypeError, "no option 'leave_runing'"):
            self.gw.dump("typo", pid=1, leave_runing=True)
        with self.assertRaisesRegex(ValueError, "NFTABLES"):
            criu_gateway.criu_options(network_lock="nft")

    def test_subscribe_is_an_iterator_of_events(self) -> None:
        events: "queue.Queue[pb.Event]" = queue.Queue()
        with self.gw.subscribe(kinds=["version"]) as subscription:
            reader = threading.Thread(target=lambda: [events.put(e) for e in subscription], daemon=True)
            reader.start()
            # The subscription is registered some time after the call starts: call Version until
            # a whole operation (started, then finished) shows that it is.
            started = self.next_started(events)
            finished = events.get(timeout=20)
        self.assertEqual(started.started.kind, pb.OPERATION_KIND_VERSION)
        self.assertEqual(finished.operation_id, started.operation_id)
        self.assertEqual(finished.WhichOneof("event"), "finished")
        self.assertEqual(finished.finished.code, 0)
        reader.join(timeout=20)
        self.assertFalse(reader.is_alive(), "closing the subscription ends its iterator")

    def test_tls_with_a_client_certificate_names_the_caller(self) -> None:
        ca = os.path.join(CERTS, "ca.pem")
        mutual = criu_gateway.TLS(
            ca=ca, cert=os.path.join(CERTS, "client.pem"), key=os.path.join(CERTS, "client.key")
        )
        with Client(TLS_ADDR, tls=mutual, timeout_s=30) as gw:
            self.assertGreaterEqual(gw.version().major_number, 4)
            # The certificate's grant allows Version only.
            with self.assertRaises(criu_gateway.PermissionDenied):
                gw.list_checkpoints()
        # Mutual TLS: a gateway given a client CA refuses connections without a certificate.
        with Client(TLS_ADDR, tls=criu_gateway.TLS(ca=ca), timeout_s=30) as anonymous:
            with self.assertRaises(criu_gateway.Unavailable):
                anonymous.version()

    def test_tls_settings_that_cannot_work_are_refused_at_once(self) -> None:
        with self.assertRaisesRegex(ValueError, "unix socket address takes no TLS"):
            Client(ADDR, tls=True)
        with self.assertRaisesRegex(ValueError, "cert and key go together"):
            Client(TLS_ADDR, tls=criu_gateway.TLS(cert=os.path.join(CERTS, "client.pem")))

    def next_started(self, events: "queue.Queue[pb.Event]") -> pb.Event:
        for _ in range(100):
            self.gw.version()
            try:
                while True:
                    event = events.get(timeout=0.5)
                    if event.WhichOneof("event") == "started":
                        return event
            except queue.Empty:
                continue
        raise AssertionError("no Version operation was seen starting by the subscription")


if __name__ == "__main__":
    unittest.main()
