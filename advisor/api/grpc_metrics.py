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

from advisor.api.handlers import Behaviour, Rebuilt, ServerInterceptor, rebuilt
from advisor.metrics import AdvisorMetrics

TYPES = {(False, False): "unary", (True, False): "client_stream", (False, True): "server_stream",
         (True, True): "bidi_stream"}
# Go's names of the codes where they are not grpc.StatusCode's name in CamelCase.
_GO_NAMES = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


def go_code(code: grpc.StatusCode) -> str:
    """A status code as Go's codes.Code.String() says it: NOT_FOUND is NotFound."""
    return _GO_NAMES.get(code) or "".join(part.capitalize() for part in code.name.split("_"))


class _MethodMetrics:
    """One method's series, looked up once (a look-up by labels cost more than the counting)."""

    def __init__(self, m: AdvisorMetrics, labels: tuple[str, str, str]) -> None:
        self.started, self.received = m.grpc_started.labels(*labels), m.grpc_received.labels(*labels)
        self.sent, self.seconds = m.grpc_sent.labels(*labels), m.grpc_seconds.labels(*labels)
        self._handled = m.grpc_handled
        self._labels = labels
        self._by_code: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        counter = self._by_code.get(code)
        if counter is None:  # at most one per status code
            counter = self._by_code[code] = self._handled.labels(*self._labels, go_code(code))
        return counter


class GrpcMetrics(ServerInterceptor):
    def __init__(self, metrics: AdvisorMetrics) -> None:
        self._m = metrics
        self._rebuilt = Rebuilt(self._rebuild)

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None  # an unknown method: gRPC answers UNIMPLEMENTED itself
        return self._rebuilt(handler, details.method)

    def _rebuild(self, handler: Any, full: str) -> Any:
        service, _, method = full.lstrip("/").rpartition("/")
        kind = (bool(handler.request_streaming), bool(handler.response_streaming))
        series = _MethodMetrics(self._m, (TYPES[kind], service, method))
        return rebuilt(handler, lambda behaviour: self._measured(behaviour, series, kind[0]))

    def _measured(self, behaviour: Behaviour, series: _MethodMetrics, streamed_in: bool) -> Behaviour:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            series.started.inc()
            started = time.perf_counter()
            if streamed_in:
                request = self._received(request, series)
            else:
                series.received.inc()
            try:
                result = behaviour(request, context)
            except BaseException:
                self._handled(series, context, started, grpc.StatusCode.UNKNOWN)
                raise
            if isinstance(result, Iterator):
                return self._sent(result, series, context, started)
            series.sent.inc()
            self._handled(series, context, started, grpc.StatusCode.OK)
            return result

        return call

    def _received(self, requests: Iterator[Any], series: _MethodMetrics) -> Iterator[Any]:
        for request in requests:
            series.received.inc()
            yield request

    def _sent(self, responses: Iterator[Any], series: _MethodMetrics, context: grpc.ServicerContext,
              started: float) -> Iterator[Any]:
        try:
            for response in responses:
                series.sent.inc()
                yield response
        except BaseException:
            self._handled(series, context, started, grpc.StatusCode.UNKNOWN)
            raise
        self._handled(series, context, started, grpc.StatusCode.OK)

    def _handled(self, series: _MethodMetrics, context: grpc.ServicerContext, started: float,
                 otherwise: grpc.StatusCode) -> None:
        """Count the end of a call with the code its context was given (by abort or set_code), else `otherwise`:
        OK for a normal return, UNKNOWN for an exception gRPC turns into one."""
        code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
        series.handled(code or otherwise).inc()
        series.seconds.observe(time.perf_counter() - started)
