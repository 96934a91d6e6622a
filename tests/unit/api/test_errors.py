"""The one table of statuses and the interceptor that applies it: what a call that raised answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from advisor.adapters.prometheus.queries import PrometheusError
from advisor.api.errors import STATUS, ErrorInterceptor, MalformedRequest, status_of
from advisor.api.grpc_metrics import GrpcMetrics
from advisor.domain.errors import AdvisorError, InvalidArgument, NotFound, Unavailable
from advisor.metrics import AdvisorMetrics
from advisor.ml.batch import BatchInputError, RowProblem

SERVICE = "advisor.v1.InventoryService"


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self, *, active: bool = True) -> None:
        self.status: grpc.StatusCode | None = None
        self.details = ""
        self.active = active

    def is_active(self) -> bool:
        return self.active

    def code(self) -> grpc.StatusCode | None:
        return self.status

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.status, self.details = code, details
        raise Aborted


@dataclass(frozen=True)
class Details:
    method: str


def _subclasses(cls: type[AdvisorError]) -> set[type[AdvisorError]]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def test_every_error_the_advisor_answers_with_has_a_status_of_its_own() -> None:
    assert _subclasses(AdvisorError) >= {PrometheusError, BatchInputError}
    for cls in _subclasses(AdvisorError):
        assert any(issubclass(cls, base) for base in STATUS), f"{cls.__name__} would be INTERNAL"
    assert status_of(PrometheusError("Prometheus at x is unreachable")) == grpc.StatusCode.UNAVAILABLE
    batch = BatchInputError(Path("in.csv"), [RowProblem(2, "technique is missing")])
    assert status_of(batch) == grpc.StatusCode.INVALID_ARGUMENT
    assert str(batch).startswith("in.csv: 1 bad row(s)") and "row 2: technique is missing" in str(batch)
    assert status_of(AdvisorError("no class of the table")) == grpc.StatusCode.INTERNAL


def _call(behaviour: Any, request: Any = None, *, streaming: bool = False, service: str = SERVICE,
          active: bool = True) -> tuple[FakeContext, Any, AdvisorMetrics]:
    metrics = AdvisorMetrics(CollectorRegistry())
    factory = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
    errors = ErrorInterceptor([SERVICE])  # behind the metrics, as the server has them
    handler = GrpcMetrics(metrics).intercept_service(
        lambda details: errors.intercept_service(lambda _details: factory(behaviour), details),
        Details(f"/{service}/PushInventory"))
    context = FakeContext(active=active)
    run = handler.unary_stream if streaming else handler.unary_unary
    try:
        answer = run(request, context)
        if streaming:
            answer = list(answer)
    except Aborted:
        answer = None
    return context, answer, metrics


def _count(metrics: AdvisorMetrics, code: str) -> float | None:
    """Calls ended with `code` (Go's spelling), as grpc_metrics counts them."""
    return metrics.registry.get_sample_value("grpc_server_handled_total", {
        "grpc_method": "PushInventory", "grpc_code": code, "grpc_service": SERVICE,
        "grpc_type": "unary"})


def test_an_advisor_error_is_answered_with_its_status_and_words() -> None:
    def missing(request: Any, context: Any) -> Any:
        raise NotFound("vm_id", "VM", "vm-9")

    context, answer, metrics = _call(missing)
    assert (context.status, context.details, answer) == (grpc.StatusCode.NOT_FOUND, "vm_id: unknown VM 'vm-9'", None)
    assert _count(metrics, "NotFound") == 1.0


def test_anything_else_is_internal_with_an_incident_and_nothing_of_its_words() -> None:
    def broken(request: Any, context: Any) -> Any:
        raise KeyError("/etc/secret")

    context, _answer, metrics = _call(broken)
    assert context.status == grpc.StatusCode.INTERNAL
    assert re.fullmatch(r"internal error, logged as incident [0-9a-f]{8}", context.details)
    assert _count(metrics, "Internal") == 1.0


def test_a_request_that_did_not_parse_never_reaches_the_servicer() -> None:
    def servicer(request: Any, context: Any) -> Any:
        raise AssertionError("reached")

    context, _answer, _metrics = _call(servicer, MalformedRequest("advisor.v1.PushInventoryRequest", "truncated"))
    assert context.status == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == "request: not a valid advisor.v1.PushInventoryRequest: truncated"


def test_an_answer_passes_untouched_and_is_counted_ok() -> None:
    context, answer, metrics = _call(lambda request, context: "answer")
    assert (context.status, answer, _count(metrics, "OK")) == (None, "answer", 1.0)


class GoneClient(grpc.RpcError):
    """What a request stream raises once its client cancelled."""


def _gone(request: Any, context: Any) -> str:
    raise GoneClient()


def _bug(request: Any, context: Any) -> str:
    raise KeyError("a bug")


@pytest.mark.parametrize(("behaviour", "active", "code", "incident"), [
    (lambda request, context: "answer", False, "Canceled", False),  # its request stream just ended: cancelled
    (_gone, False, "Canceled", False),  # its request stream raised as the client went
    (_gone, True, "Internal", True),  # an RpcError of a live call is ours to explain
    (_bug, False, "Internal", True),  # a bug stays an incident, client gone or not
])
def test_a_client_gone_is_a_cancelled_call_not_an_incident(behaviour: Any, active: bool, code: str,
                                                            incident: bool) -> None:
    context, _answer, metrics = _call(behaviour, active=active)
    assert _count(metrics, code) == 1.0
    assert ("incident" in context.details) is incident


def test_an_error_while_streaming_ends_the_stream_with_its_status() -> None:
    def watch(request: Any, context: Any) -> Iterator[str]:
        yield "first"
        raise Unavailable("Prometheus at x is unreachable")

    context, _answer, metrics = _call(watch, streaming=True)
    assert (context.status, context.details) == (grpc.StatusCode.UNAVAILABLE, "Prometheus at x is unreachable")
    ended = metrics.registry.get_sample_value("grpc_server_handled_total", {
        "grpc_method": "PushInventory", "grpc_code": "Unavailable", "grpc_service": SERVICE,
        "grpc_type": "server_stream"})
    assert ended == 1.0  # counted when the stream ended, with its status


def test_calls_of_other_services_pass_by() -> None:
    def health(request: Any, context: Any) -> Any:
        raise InvalidArgument("service", "unknown")

    with pytest.raises(InvalidArgument):
        _call(health, service="grpc.health.v1.Health")
