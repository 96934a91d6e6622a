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
from advisor.domain.errors import AdvisorError, InvalidArgument, NotFound, Unavailable
from advisor.metrics import AdvisorMetrics
from advisor.ml.batch import BatchInputError, RowProblem

SERVICE = "advisor.v1.InventoryService"


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
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


def _call(behaviour: Any, request: Any = None, *, streaming: bool = False,
          service: str = SERVICE) -> tuple[FakeContext, Any, AdvisorMetrics]:
    metrics = AdvisorMetrics(CollectorRegistry())
    factory = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
    handler = ErrorInterceptor(metrics, [SERVICE]).intercept_service(
        lambda _details: factory(behaviour), Details(f"/{service}/PushInventory"))
    context = FakeContext()
    run = handler.unary_stream if streaming else handler.unary_unary
    try:
        answer = run(request, context)
        if streaming:
            answer = list(answer)
    except Aborted:
        answer = None
    return context, answer, metrics


def _count(metrics: AdvisorMetrics, code: str) -> float | None:
    return metrics.registry.get_sample_value("advisor_rpc_requests_total", {"method": "PushInventory", "code": code})


def test_an_advisor_error_is_answered_with_its_status_and_words() -> None:
    def missing(request: Any, context: Any) -> Any:
        raise NotFound("vm_id", "VM", "vm-9")

    context, answer, metrics = _call(missing)
    assert (context.code, context.details, answer) == (grpc.StatusCode.NOT_FOUND, "vm_id: unknown VM 'vm-9'", None)
    assert _count(metrics, "NOT_FOUND") == 1.0


def test_anything_else_is_internal_with_an_incident_and_nothing_of_its_words() -> None:
    def broken(request: Any, context: Any) -> Any:
        raise KeyError("/etc/secret")

    context, _answer, metrics = _call(broken)
    assert context.code == grpc.StatusCode.INTERNAL
    assert re.fullmatch(r"internal error, logged as incident [0-9a-f]{8}", context.details)
    assert _count(metrics, "INTERNAL") == 1.0


def test_a_request_that_did_not_parse_never_reaches_the_servicer() -> None:
    def servicer(request: Any, context: Any) -> Any:
        raise AssertionError("reached")

    context, _answer, _metrics = _call(servicer, MalformedRequest("advisor.v1.PushInventoryRequest", "truncated"))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == "request: not a valid advisor.v1.PushInventoryRequest: truncated"


def test_an_answer_passes_untouched_and_is_counted_ok() -> None:
    context, answer, metrics = _call(lambda request, context: "answer")
    assert (context.code, answer, _count(metrics, "OK")) == (None, "answer", 1.0)


def test_an_error_while_streaming_ends_the_stream_with_its_status() -> None:
    def watch(request: Any, context: Any) -> Iterator[str]:
        yield "first"
        raise Unavailable("Prometheus at x is unreachable")

    context, _answer, metrics = _call(watch, streaming=True)
    assert (context.code, context.details) == (grpc.StatusCode.UNAVAILABLE, "Prometheus at x is unreachable")
    assert _count(metrics, "OK") == 1.0  # counted when the stream started, as it was


def test_calls_of_other_services_pass_by() -> None:
    def health(request: Any, context: Any) -> Any:
        raise InvalidArgument("service", "unknown")

    with pytest.raises(InvalidArgument):
        _call(health, service="grpc.health.v1.Health")
