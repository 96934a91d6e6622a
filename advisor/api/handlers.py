"""What the server and its interceptors share: how a method handler is made for each kind of call, and a handler
rebuilt around a wrapped behaviour (how an interceptor puts itself between gRPC and the servicer), once per
method."""

from __future__ import annotations

import threading
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


class Rebuilt:
    """An interceptor's handlers, rebuilt once per method: gRPC asks every interceptor for the handler of each
    call, and rebuilding it with its wrappers cost more than a short call's own work. `rebuild(handler, method)`
    is called again only when the handler it was given changes (the inner interceptors cache theirs too)."""

    def __init__(self, rebuild: Callable[[Any, str], Any]) -> None:
        self._rebuild = rebuild
        self._by_method: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, handler: Any, method: str) -> Any:
        cached = self._by_method.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        made = self._rebuild(handler, method)
        with self._lock:  # methods are those registered (an unknown one has no handler): the dict stays small
            self._by_method[method] = (handler, made)
        return made
