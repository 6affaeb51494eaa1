"""A Session call: a dump or restore whose CRIU callbacks the caller answers.

CRIU stops at each action-script point (pre-dump, network-lock, post-dump, pre-restore, ...) with
the processes frozen and waits for an answer. A :class:`Session` hands those callbacks out as an
iterator; each must be answered (:meth:`Callback.approve` or :meth:`Callback.veto`) before the
next can come. :func:`answer_with` answers them from a callback object instead.
"""

from __future__ import annotations

import queue
from typing import Any, Iterator, List, Optional, Sequence, Union

import grpc

from criu_gateway._proto.criu.gateway.v1 import gateway_pb2 as pb
from criu_gateway.errors import GatewayError, from_rpc_error

# Ends the request stream (grpc's request iterator stops at this sentinel).
_END = object()


class Callback:
    """One CRIU callback; answer it with :meth:`approve` or :meth:`veto`, exactly once.

    Attributes:
        script: the action-script name as CRIU gives it, e.g. ``"post-dump"``.
        sequence: numbers the operation's callbacks from 1.
        pid: the pid CRIU gave with the callback, or None.
        timeout_ms: how long the gateway waits for the answer before vetoing on the caller's behalf.
        fd_received: whether CRIU passed a descriptor (the gateway keeps and closes it).
    """

    def __init__(self, session: "Session", message: pb.NotifyCallback) -> None:
        self._session = session
        self.script: str = message.script
        self.sequence: int = message.sequence
        self.pid: Optional[int] = message.pid if message.HasField("pid") else None
        self.timeout_ms: int = message.timeout_ms
        self.fd_received: bool = message.fd_received
        self.answer: Optional[bool] = None

    @property
    def answered(self) -> bool:
        return self.answer is not None

    def approve(self, external: Sequence[str] = ()) -> None:
        """Lets CRIU go on. ``external`` (query-ext-files only) adds external resources."""
        self._reply(True, external)

    def veto(self) -> None:
        """Makes CRIU fail and roll back: the processes resume and nothing is published."""
        self._reply(False, ())

    def _reply(self, success: bool, external: Sequence[str]) -> None:
        if self.answer is not None:
            raise RuntimeError(f"callback {self.sequence} ({self.script}) is already answered")
        self.answer = success
        self._session._send(
            pb.SessionRequest(
                notify_reply=pb.NotifyReply(sequence=self.sequence, success=success, external=list(external))
            )
        )

    def __repr__(self) -> str:
        return f"Callback({self.script!r}, sequence={self.sequence}, pid={self.pid})"


class PreDumped:
    """In an iterative dump: a pre-dump succeeded. Ask for another (:meth:`again`) or the end."""

    def __init__(self, session: "Session", message: pb.PreDumpResponse) -> None:
        self._session = session
        self.checkpoint: pb.Checkpoint = message.checkpoint
        self.statistics: pb.DumpStatistics = message.statistics
        self.answer: Optional[bool] = None

    @property
    def answered(self) -> bool:
        return self.answer is not None

    def again(self) -> None:
        """Another pre-dump, of the pages changed since this one."""
        self._step(False)

    def final_dump(self) -> None:
        """The final dump, which freezes the tree and writes what changed since this pre-dump."""
        self._step(True)

    def _step(self, final: bool) -> None:
        if self.answer is not None:
            raise RuntimeError("this pre-dump is already answered")
        self.answer = final
        self._session._send(pb.SessionRequest(next=pb.IterationStep(final_dump=final)))


Item = Union[Callback, PreDumped]


class Session:
    """A running Session call. Iterate it for its callbacks; :meth:`result` waits for the end.

    Use it as a context manager, so that leaving the block early cancels the operation (the
    gateway then vetoes CRIU's next callback, and CRIU rolls back)::

        with gw.dump_session("web-1", pid=1234) as session:
            for callback in session:
                callback.approve()
            print(session.result().checkpoint.size_bytes)
    """

    def __init__(self, stub: Any, start: pb.SessionStart, timeout_s: Optional[float]) -> None:
        self._requests: "queue.Queue[object]" = queue.Queue()
        self._requests.put(pb.SessionRequest(start=start))
        self._call = stub.Session(iter(self._requests.get, _END), timeout=timeout_s)
        self._pending: Optional[Item] = None
        self._result: Optional[Any] = None
        self._done = False
        self.operation_id: str = ""
        #: Every callback handed out so far, in order.
        self.callbacks: List[Callback] = []

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        if self._pending is not None and not self._pending.answered:
            raise RuntimeError(f"answer {self._pending!r} before asking for the next callback")
        while True:
            try:
                response = next(self._call)
            except StopIteration:
                self._finish()
                raise
            except grpc.RpcError as err:
                self._finish()
                raise from_rpc_error(err) from None
            kind = response.WhichOneof("response")
            if kind == "started":
                self.operation_id = response.started.operation_id
            elif kind == "callback":
                callback = Callback(self, response.callback)
                self.callbacks.append(callback)
                self._pending = callback
                return callback
            elif kind == "pre_dump_result":
                self._pending = PreDumped(self, response.pre_dump_result)
                return self._pending
            elif kind in ("dump_result", "restore_result"):
                self._result = getattr(response, kind)

    def result(self) -> Any:
        """The DumpResponse or RestoreResponse, once the operation has ended.

        Raises GatewayError when it failed. A callback still arriving here was not answered by
        the caller: it is vetoed (CRIU rolls back) and RuntimeError says so.
        """
        for item in self:
            if isinstance(item, Callback):
                item.veto()
                self.cancel()
                raise RuntimeError(f"{item!r} arrived while waiting for the result; it was vetoed")
            item.final_dump()
        return self._result

    def cancel(self) -> None:
        """Cancels the call; CRIU's next callback is vetoed and the operation rolls back."""
        self._call.cancel()
        self._finish()

    def _send(self, request: pb.SessionRequest) -> None:
        if self._done:
            raise RuntimeError("the session has ended")
        self._requests.put(request)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._requests.put(_END)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.cancel()


def answer_with(session: Session, handler: Any) -> Any:
    """Runs the session to its end, answering each callback from ``handler``; returns the result.

    ``handler`` is an object with a method per script it cares about, named like the script with
    underscores (``pre_dump``, ``network_lock``, ``post_restore``, ...), and optionally
    ``on_callback`` for the others; or a plain function called for every callback. Each gets the
    :class:`Callback`. Returning False vetoes; anything else approves; a list of strings from
    ``query_ext_files`` approves with those externals. A script the handler has no method for is
    approved. An exception vetoes the callback and is raised again once the session has ended.
    In an iterative dump, ``pre_dumped(item)`` returning False asks for another pre-dump.
    """
    raised: List[BaseException] = []
    try:
        _answer_all(session, handler, raised)
    except GatewayError as err:
        if raised:
            raise raised[0] from err
        raise
    if raised:
        raise raised[0]
    return session._result


def _answer_all(session: Session, handler: Any, raised: List[BaseException]) -> None:
    for item in session:
        if isinstance(item, PreDumped):
            # pre_dumped(item) returning False asks for another pre-dump; the default is the end.
            step = getattr(handler, "pre_dumped", None)
            if step is not None and step(item) is False:
                item.again()
            else:
                item.final_dump()
            continue
        method = _method_for(handler, item.script)
        try:
            answer = method(item) if method is not None else None
        except Exception as err:  # noqa: BLE001 - handed back to the caller by answer_with
            raised.append(err)
            answer = False
        if answer is False:
            item.veto()
        elif isinstance(answer, (list, tuple)):
            item.approve(external=answer)
        else:
            item.approve()


def _method_for(handler: Any, script: str) -> Any:
    method = getattr(handler, script.replace("-", "_"), None)
    if method is None:
        method = getattr(handler, "on_callback", None)
    if method is None and callable(handler) and not isinstance(handler, type):
        method = handler
    return method


__all__ = ["Callback", "GatewayError", "PreDumped", "Session", "answer_with"]
