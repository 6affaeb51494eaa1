"""Errors of criu-gateway calls, with what CRIU said when CRIU was involved.

The gateway puts a ``google.rpc.Status`` in a failed call's ``grpc-status-details-bin`` trailer;
its details hold a ``criu.gateway.v1.ErrorDetail`` with CRIU's errno, message and log tail. This
module turns a ``grpc.RpcError`` into a :class:`GatewayError` (or the subclass for its code) that
carries them as attributes.
"""

from __future__ import annotations

import errno as _errno
from typing import Dict, Optional, Sequence, Tuple, Type

import grpc

from criu_gateway._proto.criu.gateway.v1 import gateway_pb2 as _pb
from criu_gateway._proto.google.rpc import status_pb2 as _status_pb

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DETAIL_TYPE_URL = "type.googleapis.com/criu.gateway.v1.ErrorDetail"


class GatewayError(Exception):
    """A failed call: its gRPC status code and message, and CRIU's side of it when there is one.

    Attributes:
        code: the call's ``grpc.StatusCode``.
        message: the gateway's message, written for a person to act on.
        request_type: CRIU's request type (e.g. ``"DUMP"``), or ``""`` when CRIU was not involved.
        cr_errno: the errno CRIU reported (0 when it gave none).
        cr_errmsg: CRIU's own message, when it gave one.
        log_tail: the last lines of CRIU's log for this call.
        worker_exit: how CRIU's worker ended, when it ended abnormally (e.g. "killed by SIGSEGV").
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        detail: Optional[_pb.ErrorDetail] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        detail = detail or _pb.ErrorDetail()
        self.request_type: str = detail.request_type
        self.cr_errno: int = detail.cr_errno
        self.cr_errmsg: str = detail.cr_errmsg
        self.log_tail: Tuple[str, ...] = tuple(detail.log_tail)
        self.worker_exit: str = detail.worker_exit

    @property
    def from_criu(self) -> bool:
        """Whether CRIU (or its worker) was involved in the failure."""
        return self.request_type != ""

    @property
    def errno_name(self) -> str:
        """CRIU's errno as its symbolic name (``"EEXIST"``), or ``""`` when there is none."""
        return _errno.errorcode.get(self.cr_errno, "") if self.cr_errno else ""

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.cr_errno:
            errno_text = " ".join(filter(None, [str(self.cr_errno), self.errno_name]))
            text += f" (CRIU {self.request_type}: errno {errno_text})"
        if self.worker_exit:
            text += f" (CRIU's worker {self.worker_exit})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r}, cr_errno={self.cr_errno})"


class InvalidArgument(GatewayError):
    """The request is wrong: the message says which field and why."""


class NotFound(GatewayError):
    """No checkpoint (or log, page server, process) by that name."""


class AlreadyExists(GatewayError):
    """The checkpoint id is taken, or a restored pid is in use."""


class PermissionDenied(GatewayError):
    """The gateway's policy does not grant this call, option or checkpoint to the caller."""


class FailedPrecondition(GatewayError):
    """CRIU could not do it in the host's present state (see ``log_tail``), or a callback vetoed it."""


class Unavailable(GatewayError):
    """The gateway cannot be reached, or is shutting down."""


_BY_CODE: Dict[grpc.StatusCode, Type[GatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def error_detail(trailers: Optional[Sequence[Tuple[str, object]]]) -> Optional[_pb.ErrorDetail]:
    """The ErrorDetail in a call's trailing metadata, or None when it carries none."""
    for key, value in trailers or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = _status_pb.Status.FromString(value)
        for any_detail in status.details:
            if any_detail.type_url == ERROR_DETAIL_TYPE_URL:
                return _pb.ErrorDetail.FromString(any_detail.value)
    return None


def from_rpc_error(err: grpc.RpcError) -> GatewayError:
    """The GatewayError (or its subclass for the status code) for a failed gRPC call."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    cls = _BY_CODE.get(code, GatewayError)
    return cls(code, message or "", error_detail(trailers))
