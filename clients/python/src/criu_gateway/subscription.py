"""A Subscribe stream as a Python iterator of events."""

from __future__ import annotations

from typing import Any, Iterator

import grpc

from criu_gateway._proto.criu.gateway.v1 import gateway_pb2 as pb
from criu_gateway.errors import from_rpc_error


class Subscription:
    """Iterate for ``criu_gateway.pb.Event`` messages; :meth:`close` ends it (so does ``with``).

    An event's kind is ``event.WhichOneof("event")``: ``"started"``, ``"callback"``,
    ``"callback_answered"``, ``"finished"`` or ``"events_lost"`` (this subscriber fell behind and
    ``events_lost.count`` events were dropped). Iteration stops when the subscription is closed
    or the gateway shuts down; any other end raises GatewayError.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._closed = False

    def __iter__(self) -> Iterator[pb.Event]:
        return self

    def __next__(self) -> pb.Event:
        try:
            return next(self._call).event
        except grpc.RpcError as err:
            if self._closed and err.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(err) from None

    def close(self) -> None:
        self._closed = True
        self._call.cancel()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
