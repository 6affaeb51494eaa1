"""The criu-gateway client: one object per gateway, a method per RPC, keyword options."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, List, Mapping, Optional, Sequence, TypeVar, Union

import grpc

from criu_gateway._proto.criu.gateway.v1 import gateway_pb2 as pb
from criu_gateway._proto.criu.gateway.v1 import gateway_pb2_grpc as pb_grpc
from criu_gateway.errors import from_rpc_error
from criu_gateway.session import Session, answer_with
from criu_gateway.subscription import Subscription

T = TypeVar("T")
EnumName = Union[str, int]


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS for a ``host:port`` address. Paths to PEM files; all optional.

    Attributes:
        ca: the CA that signed the gateway's certificate (default: the system's roots).
        cert, key: the client's certificate and key, for mutual TLS (the certificate names you).
        server_name: the name to expect in the gateway's certificate, when it is not the host.
    """

    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLS: cert and key go together")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca), private_key=_read(self.key), certificate_chain=_read(self.cert)
        )


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def criu_options(**options: Any) -> pb.CriuOptions:
    """CRIU's options from keywords named as in CriuOptions (``leave_running=True``, ...).

    Enum options take their name without the prefix, any case (``network_lock="nftables"``).
    Raises TypeError naming an option that does not exist.
    """
    fields = pb.CriuOptions.DESCRIPTOR.fields_by_name
    for name, value in options.items():
        field = fields.get(name)
        if field is None:
            raise TypeError(f"CriuOptions has no option {name!r}; see criu_gateway.pb.CriuOptions")
        if field.enum_type is not None and isinstance(value, str):
            options[name] = _enum_value(field.enum_type, value)
    return pb.CriuOptions(**options)


def _enum_value(enum: Any, value: EnumName) -> int:
    """An enum's number from its number, its full name or its short name in any case and with
    dashes ("pre-dump" for CHECKPOINT_LOG_KIND_PRE_DUMP)."""
    if isinstance(value, int):
        return value
    wanted = value.upper().replace("-", "_")
    for v in enum.values:
        if v.name == wanted or v.name.endswith(f"_{wanted}"):
            return v.number
    names = ", ".join(v.name for v in enum.values if v.number != 0)
    raise ValueError(f"{value!r} is not one of {enum.name}'s values ({names})")


class Client:
    """A connection to one criu-gateway.

    ``addr`` is ``"unix:/run/criu-gateway/gateway.sock"`` (the default socket) or ``"host:port"``.
    A ``host:port`` address uses TLS when ``tls`` is given (True for the system's roots, or a
    :class:`TLS`); without it the connection is plain, which the gateway allows on loopback only.
    ``timeout_s`` is every unary call's deadline unless the call gives its own ``call_timeout_s``.

    Failed calls raise :class:`criu_gateway.GatewayError` (or a subclass such as ``NotFound``),
    carrying CRIU's errno and log tail when CRIU failed. Use the client as a context manager, or
    call :meth:`close`.
    """

    def __init__(
        self,
        addr: str = "unix:/run/criu-gateway/gateway.sock",
        *,
        tls: Union[None, bool, TLS] = None,
        timeout_s: Optional[float] = None,
        channel_options: Sequence[tuple] = (),
    ) -> None:
        options = list(channel_options)
        if addr.startswith("unix:"):
            if tls:
                raise ValueError("a unix socket address takes no TLS")
            self._channel = grpc.insecure_channel(addr, options=options)
        elif tls:
            settings = TLS() if tls is True else tls
            if settings.server_name:
                options.append(("grpc.ssl_target_name_override", settings.server_name))
            self._channel = grpc.secure_channel(addr, settings.credentials(), options=options)
        else:
            self._channel = grpc.insecure_channel(addr, options=options)
        self._stub = pb_grpc.CriuServiceStub(self._channel)
        self._timeout_s = timeout_s

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method: str, request: Any, call_timeout_s: Optional[float]) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=call_timeout_s or self._timeout_s)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def _unary_or_session(
        self, method: str, request: Any, callbacks: Any, callback_timeout_ms: int, call_timeout_s: Optional[float]
    ) -> Any:
        """A unary Dump or Restore, or with ``callbacks`` the same as a Session answered by them."""
        if callbacks is None:
            return self._unary(method, request, call_timeout_s)
        start = pb.SessionStart(callback_timeout_ms=callback_timeout_ms)
        getattr(start, method.lower()).CopyFrom(_with_notify(request))
        with Session(self._stub, start, call_timeout_s) as session:
            return answer_with(session, callbacks)

    # Host and CRIU.

    def version(self, *, call_timeout_s: Optional[float] = None) -> pb.VersionResponse:
        """CRIU's version and the gateway's (``gateway_version``)."""
        return self._unary("Version", pb.VersionRequest(), call_timeout_s)

    def check(self, *, call_timeout_s: Optional[float] = None, **options: Any) -> None:
        """Returns when the kernel supports checkpoint/restore; raises FailedPrecondition if not."""
        self._unary("Check", pb.CheckRequest(options=criu_options(**options)), call_timeout_s)

    def feature_check(self, *, call_timeout_s: Optional[float] = None) -> pb.FeatureCheckResponse:
        """Which optional kernel features work here: ``mem_track``, ``lazy_pages``, ``pidfd_store``."""
        return self._unary("FeatureCheck", pb.FeatureCheckRequest(), call_timeout_s)

    def wait_pid(self, pid: int, *, call_timeout_s: Optional[float] = None) -> pb.WaitPidResponse:
        """CRIU's WAIT_PID (see the proto: for an existing process, FailedPrecondition)."""
        return self._unary("WaitPid", pb.WaitPidRequest(pid=pid), call_timeout_s)

    # Checkpoints.

    def dump(
        self,
        checkpoint_id: str,
        *,
        pid: int,
        parent: str = "",
        callbacks: Any = None,
        callback_timeout_ms: int = 0,
        call_timeout_s: Optional[float] = None,
        **options: Any,
    ) -> pb.DumpResponse:
        """Checkpoints the tree rooted at ``pid`` as ``checkpoint_id``; more CRIU options as keywords.

        With ``callbacks`` (an object or function, see :func:`criu_gateway.answer_with`), runs as
        a Session whose CRIU callbacks the object answers; without, a unary Dump.
        """
        request = _dump_request(checkpoint_id, pid, parent, options)
        return self._unary_or_session("Dump", request, callbacks, callback_timeout_ms, call_timeout_s)

    def restore(
        self,
        checkpoint_id: str,
        *,
        callbacks: Any = None,
        callback_timeout_ms: int = 0,
        call_timeout_s: Optional[float] = None,
        **options: Any,
    ) -> pb.RestoreResponse:
        """Restores a checkpoint; the response's ``pid`` is the restored root's. ``callbacks`` as
        for :meth:`dump`."""
        request = pb.RestoreRequest(checkpoint_id=checkpoint_id, options=criu_options(**options))
        return self._unary_or_session("Restore", request, callbacks, callback_timeout_ms, call_timeout_s)

    def pre_dump(
        self, checkpoint_id: str, *, pid: int, parent: str = "", call_timeout_s: Optional[float] = None, **options: Any
    ) -> pb.PreDumpResponse:
        """Copies the running tree's memory into a PRE_DUMP checkpoint (needs mem_track)."""
        request = pb.PreDumpRequest(
            checkpoint_id=checkpoint_id, parent_checkpoint_id=parent, options=criu_options(pid=pid, **options)
        )
        return self._unary("PreDump", request, call_timeout_s)

    def dump_session(
        self, checkpoint_id: str, *, pid: int, parent: str = "", callback_timeout_ms: int = 0, **options: Any
    ) -> Session:
        """A dump whose callbacks you answer by iterating the returned :class:`Session`."""
        request = _dump_request(checkpoint_id, pid, parent, options)
        start = pb.SessionStart(dump=_with_notify(request), callback_timeout_ms=callback_timeout_ms)
        return Session(self._stub, start, None)

    def restore_session(self, checkpoint_id: str, *, callback_timeout_ms: int = 0, **options: Any) -> Session:
        """A restore whose callbacks you answer by iterating the returned :class:`Session`."""
        request = pb.RestoreRequest(checkpoint_id=checkpoint_id, options=criu_options(**options))
        start = pb.SessionStart(restore=_with_notify(request), callback_timeout_ms=callback_timeout_ms)
        return Session(self._stub, start, None)

    def iterative_dump_session(
        self, checkpoint_id: str, *, pid: int, parent: str = "", callback_timeout_ms: int = 0, **options: Any
    ) -> Session:
        """Pre-dumps, then a final dump, on one worker: iterating yields a PreDumped after each
        pre-dump (answer ``again()`` or ``final_dump()``) and the callbacks when notify_scripts is set."""
        request = _dump_request(checkpoint_id, pid, parent, options)
        start = pb.SessionStart(iterative_dump=request, callback_timeout_ms=callback_timeout_ms)
        return Session(self._stub, start, None)

    def list_checkpoints(self, *, call_timeout_s: Optional[float] = None) -> List[pb.Checkpoint]:
        """Every checkpoint of the image store, oldest first."""
        return list(self._unary("ListCheckpoints", pb.ListCheckpointsRequest(), call_timeout_s).checkpoints)

    def get_checkpoint(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None) -> pb.Checkpoint:
        """One checkpoint; raises NotFound when there is none with that id."""
        request = pb.GetCheckpointRequest(checkpoint_id=checkpoint_id)
        return self._unary("GetCheckpoint", request, call_timeout_s).checkpoint

    def delete_checkpoint(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None) -> None:
        """Removes a checkpoint and its files; raises NotFound when there is none."""
        self._unary("DeleteCheckpoint", pb.DeleteCheckpointRequest(checkpoint_id=checkpoint_id), call_timeout_s)

    def checkpoint_log(
        self, checkpoint_id: str, kind: EnumName = "unspecified", *, call_timeout_s: Optional[float] = None
    ) -> pb.GetCheckpointLogResponse:
        """CRIU's log of an operation on a checkpoint: kind ``"dump"``, ``"restore"``, ``"pre-dump"``,
        ... (default: the operation that made it). The text is in ``.text``."""
        kind_number = 0 if kind == "unspecified" else _enum_value(pb.CheckpointLogKind.DESCRIPTOR, kind)
        request = pb.GetCheckpointLogRequest(checkpoint_id=checkpoint_id, kind=kind_number)
        return self._unary("GetCheckpointLog", request, call_timeout_s)

    def cpuinfo_dump(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None, **options: Any) -> pb.Checkpoint:
        """Records this host's CPU as a CPUINFO checkpoint."""
        request = pb.CpuinfoDumpRequest(checkpoint_id=checkpoint_id, options=criu_options(**options))
        return self._unary("CpuinfoDump", request, call_timeout_s).checkpoint

    def cpuinfo_check(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None, **options: Any) -> None:
        """Returns when this host's CPU can run what the checkpoint's CPU description describes."""
        request = pb.CpuinfoCheckRequest(checkpoint_id=checkpoint_id, options=criu_options(**options))
        self._unary("CpuinfoCheck", request, call_timeout_s)

    # Moving checkpoints between hosts.

    def start_page_server(
        self, checkpoint_id: str, *, address: str = "", port: int = 0, call_timeout_s: Optional[float] = None, **options: Any
    ) -> pb.PageServer:
        """Starts a page server receiving a dump's memory into ``checkpoint_id``; its port is in
        the result (give ``ps={"address": ..., "port": ...}`` to the dumping side's :meth:`dump`)."""
        request = pb.StartPageServerRequest(
            checkpoint_id=checkpoint_id, address=address, port=port, options=criu_options(**options)
        )
        return self._unary("StartPageServer", request, call_timeout_s).page_server

    def stop_page_server(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None) -> None:
        self._unary("StopPageServer", pb.StopPageServerRequest(checkpoint_id=checkpoint_id), call_timeout_s)

    def list_page_servers(self, *, call_timeout_s: Optional[float] = None) -> List[pb.PageServer]:
        return list(self._unary("ListPageServers", pb.ListPageServersRequest(), call_timeout_s).page_servers)

    def export_images(self, checkpoint_id: str, *, call_timeout_s: Optional[float] = None) -> pb.ExportImagesResponse:
        """A checkpoint's image files, for :meth:`import_images` on another gateway."""
        return self._unary("ExportImages", pb.ExportImagesRequest(checkpoint_id=checkpoint_id), call_timeout_s)

    def import_images(
        self,
        checkpoint_id: str,
        files: Union[Mapping[str, bytes], Iterable[pb.ImageFile]],
        *,
        root_pid: int = 0,
        call_timeout_s: Optional[float] = None,
    ) -> pb.Checkpoint:
        """Adds image files (by name, or ImageFile messages) to a PAGES checkpoint."""
        images = (
            [pb.ImageFile(name=name, data=data) for name, data in files.items()]
            if isinstance(files, Mapping)
            else list(files)
        )
        request = pb.ImportImagesRequest(checkpoint_id=checkpoint_id, files=images, root_pid=root_pid)
        return self._unary("ImportImages", request, call_timeout_s).checkpoint

    # Watching.

    def subscribe(
        self, *, kinds: Iterable[EnumName] = (), pid: int = 0, checkpoint_id: str = ""
    ) -> Subscription:
        """Every operation's events from now on, as an iterator of ``criu_gateway.pb.Event``.

        ``kinds`` filters by operation kind (``"dump"``, ``"restore"``, ... or OperationKind
        numbers). Close the subscription (or leave its ``with`` block) to end it.
        """
        request = pb.SubscribeRequest(
            kinds=[_enum_value(pb.OperationKind.DESCRIPTOR, k) for k in kinds], pid=pid, checkpoint_id=checkpoint_id
        )
        return Subscription(self._stub.Subscribe(request))


def _dump_request(checkpoint_id: str, pid: int, parent: str, options: Mapping[str, Any]) -> pb.DumpRequest:
    return pb.DumpRequest(
        checkpoint_id=checkpoint_id, parent_checkpoint_id=parent, options=criu_options(pid=pid, **options)
    )


def _with_notify(request: T) -> T:
    """The request with CRIU's callbacks turned on: a Session exists to answer them."""
    request.options.notify_scripts = True  # type: ignore[attr-defined]
    return request


