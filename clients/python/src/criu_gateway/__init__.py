"""Python client of criu-gateway, the gRPC gateway to CRIU's checkpoint/restore.

    from criu_gateway import Client

    with Client("unix:/run/criu-gateway/gateway.sock") as gw:
        checkpoint = gw.dump("web-1", pid=1234, leave_running=True).checkpoint
        pid = gw.restore("web-1").pid

The generated messages are in ``criu_gateway.pb`` (``pb.CriuOptions``, ``pb.Checkpoint``, ...)
and the generated stub in ``criu_gateway.pb_grpc``, for anything the client does not cover.
"""

from criu_gateway._proto.criu.gateway.v1 import gateway_pb2 as pb
from criu_gateway._proto.criu.gateway.v1 import gateway_pb2_grpc as pb_grpc
from criu_gateway.client import TLS, Client, criu_options
from criu_gateway.errors import (
    AlreadyExists,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    error_detail,
)
from criu_gateway.session import Callback, PreDumped, Session, answer_with
from criu_gateway.subscription import Subscription

__all__ = [
    "AlreadyExists",
    "Callback",
    "Client",
    "FailedPrecondition",
    "GatewayError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PreDumped",
    "Session",
    "Subscription",
    "TLS",
    "Unavailable",
    "answer_with",
    "criu_options",
    "error_detail",
    "pb",
    "pb_grpc",
]
