"""What the server and its interceptors share: how a method handler is made for each kind of call, and a handler
rebuilt around a wrapped behaviour (how an interceptor puts itself between gRPC and the servicer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

Behaviour = Callable[..., Any]

# The handler factory of each kind of call, by (request streaming, response streaming).
FACTORIES: dict[tuple[bool, bool], Callable[..., Any]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}

# The interceptor base is generic only in the type stubs.
if TYPE_CHECKING:
    class ServerInterceptor(grpc.ServerInterceptor[Any, Any]):
        ...
else:
    class ServerInterceptor(grpc.ServerInterceptor):
        ...


def rebuilt(handler: Any, around: Callable[[Behaviour], Behaviour]) -> Any:
    """The same handler (kind, parsing, serialising) with its behaviour wrapped by `around`."""
    kind = (bool(handler.request_streaming), bool(handler.response_streaming))
    behaviour = {(False, False): handler.unary_unary, (True, False): handler.stream_unary,
                 (False, True): handler.unary_stream, (True, True): handler.stream_stream}[kind]
    return FACTORIES[kind](around(behaviour), request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)
