"""gRPC server metrics under the names stock dashboards query (go-grpc-prometheus, py-grpc-prometheus):
grpc_server_started_total, grpc_server_handled_total{grpc_code}, grpc_server_handling_seconds and the message
counters, labelled grpc_type (unary, client_stream, server_stream, bidi_stream), grpc_service and grpc_method.

The interceptor sits in front of every other, so calls refused before they run (no credentials, no place) are
counted like any other. Codes are spelt as Go spells them (OK, NotFound, Unauthenticated), the convention those
dashboards' queries were written against.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc

from advisor.api.handlers import Behaviour, ServerInterceptor, rebuilt
from advisor.metrics import AdvisorMetrics

TYPES = {(False, False): "unary", (True, False): "client_stream", (False, True): "server_stream",
         (True, True): "bidi_stream"}
# Go's names of the codes where they are not grpc.StatusCode's name in CamelCase.
_GO_NAMES = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


def go_code(code: grpc.StatusCode) -> str:
    """A status code as Go's codes.Code.String() says it: NOT_FOUND is NotFound."""
    return _GO_NAMES.get(code) or "".join(part.capitalize() for part in code.name.split("_"))


class GrpcMetrics(ServerInterceptor):
    def __init__(self, metrics: AdvisorMetrics) -> None:
        self._m = metrics

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None  # an unknown method: gRPC answers UNIMPLEMENTED itself
        service, _, method = details.method.lstrip("/").rpartition("/")
        kind = (bool(handler.request_streaming), bool(handler.response_streaming))
        labels = (TYPES[kind], service, method)
        return rebuilt(handler, lambda behaviour: self._measured(behaviour, labels, kind[0]))

    def _measured(self, behaviour: Behaviour, labels: tuple[str, str, str], streamed_in: bool) -> Behaviour:
        m = self._m

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            m.grpc_started.labels(*labels).inc()
            started = time.perf_counter()
            if streamed_in:
                request = self._received(request, labels)
            else:
                m.grpc_received.labels(*labels).inc()
            try:
                result = behaviour(request, context)
            except BaseException:
                self._handled(labels, context, started, grpc.StatusCode.UNKNOWN)
                raise
            if isinstance(result, Iterator):
                return self._sent(result, labels, context, started)
            m.grpc_sent.labels(*labels).inc()
            self._handled(labels, context, started, grpc.StatusCode.OK)
            return result

        return call

    def _received(self, requests: Iterator[Any], labels: tuple[str, str, str]) -> Iterator[Any]:
        for request in requests:
            self._m.grpc_received.labels(*labels).inc()
            yield request

    def _sent(self, responses: Iterator[Any], labels: tuple[str, str, str], context: grpc.ServicerContext,
              started: float) -> Iterator[Any]:
        try:
            for response in responses:
                self._m.grpc_sent.labels(*labels).inc()
                yield response
        except BaseException:
            self._handled(labels, context, started, grpc.StatusCode.UNKNOWN)
            raise
        self._handled(labels, context, started, grpc.StatusCode.OK)

    def _handled(self, labels: tuple[str, str, str], context: grpc.ServicerContext, started: float,
                 otherwise: grpc.StatusCode) -> None:
        """Count the end of a call with the code its context was given (by abort or set_code), else `otherwise`:
        OK for a normal return, UNKNOWN for an exception gRPC turns into one."""
        code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
        self._m.grpc_handled.labels(*labels, go_code(code or otherwise)).inc()
        self._m.grpc_seconds.labels(*labels).observe(time.perf_counter() - started)
