"""One place that turns the advisor's errors into gRPC status codes, and counts, times and logs every call."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from advisor.domain.errors import AdvisorError, DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound
from advisor.metrics import AdvisorMetrics

log = logging.getLogger("advisor.api")

_CODES: tuple[tuple[type[AdvisorError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)

F = TypeVar("F", bound=Callable[..., Any])


class MalformedRequest:
    """Stands in for a request whose bytes did not parse or were too large, so the call can answer
    INVALID_ARGUMENT saying so (gRPC itself would answer INTERNAL)."""

    def __init__(self, type_name: str, problem: str) -> None:
        self.type_name = type_name
        self.problem = problem

    def error(self, field: str = "request") -> InvalidArgument:
        return InvalidArgument(field, f"not a valid {self.type_name}: {self.problem}")


def status_of(error: AdvisorError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def rpc(metrics_of: Callable[[Any], AdvisorMetrics]) -> Callable[[F], F]:
    """Decorate a unary-response servicer method: map errors to status codes, record metrics, log the outcome."""

    def decorate(method: F) -> F:
        name = method.__name__

        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            metrics = metrics_of(self)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, MalformedRequest):
                    raise request.error()
                return method(self, request, context)
            except AdvisorError as error:
                code = status_of(error)
                log.info("rejected", extra={"rpc": name, "code": code.name, "error": str(error)})
                context.abort(code, str(error))
            except Exception:
                code = grpc.StatusCode.INTERNAL
                incident = uuid.uuid4().hex[:8]
                log.exception("internal error", extra={"rpc": name, "incident": incident})
                context.abort(code, f"internal error, logged as incident {incident}")
            finally:
                metrics.rpc_requests.labels(name, code.name).inc()
                metrics.rpc_seconds.labels(name).observe(time.perf_counter() - started)

        return wrapper  # type: ignore[return-value]

    return decorate
