"""The one table from the advisor's errors to gRPC status codes, and the one interceptor that applies it to every
call of the advisor's services, counting, timing and logging each."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterator
from typing import Any, NoReturn

import grpc

from advisor.api.handlers import Behaviour, Rebuilt, ServerInterceptor, rebuilt
from advisor.domain.errors import (
    AdvisorError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

log = logging.getLogger("advisor.api")

# Each error class the advisor answers with, and its status. A subclass has the status of its nearest class
# here (PrometheusError is Unavailable); an AdvisorError of no class here is INTERNAL, with its message.
STATUS: dict[type[AdvisorError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class MalformedRequest:
    """Stands in for a request whose bytes did not parse or were too large, so the call can answer
    INVALID_ARGUMENT saying so (gRPC itself would answer INTERNAL)."""

    def __init__(self, type_name: str, problem: str) -> None:
        self.type_name = type_name
        self.problem = problem

    def error(self, field: str = "request") -> InvalidArgument:
        return InvalidArgument(field, f"not a valid {self.type_name}: {self.problem}")


def status_of(error: AdvisorError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


class ErrorInterceptor(ServerInterceptor):
    """Ends each call of the named services that raised with the status of its error: an AdvisorError's own
    (STATUS) and message, anything else INTERNAL with an incident id that finds it in the log (grpc_metrics
    counts and times each call). A request that did not parse
    (MalformedRequest) is INVALID_ARGUMENT before the servicer sees it; so is each message of a request stream,
    which the servicer checks itself to say which message it was."""

    def __init__(self, services: Collection[str]) -> None:
        self._services = frozenset(services)
        self._rebuilt = Rebuilt(self._rebuild)

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        return None if handler is None else self._rebuilt(handler, details.method)

    def _rebuild(self, handler: Any, full: str) -> Any:
        service, _, method = full.lstrip("/").rpartition("/")
        if service not in self._services:
            return handler
        return rebuilt(handler, lambda behaviour: self._answering(behaviour, method))

    def _answering(self, behaviour: Behaviour, method: str) -> Behaviour:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                if isinstance(request, MalformedRequest):
                    raise request.error()
                result = behaviour(request, context)
            except Exception as error:
                _abort(context, method, _status(error), error)
            if isinstance(result, Iterator):
                return _answered(result, context, method)
            if not context.is_active():  # the client cancelled (a request stream then just ends): say so
                _cancelled(context, method)
            return result

        return call


def _answered(stream: Iterator[Any], context: grpc.ServicerContext, method: str) -> Iterator[Any]:
    """A response stream whose errors end the call as the call's own would."""
    try:
        yield from stream
    except Exception as error:
        _abort(context, method, _status(error), error)


def _status(error: Exception) -> grpc.StatusCode:
    return status_of(error) if isinstance(error, AdvisorError) else grpc.StatusCode.INTERNAL


def _abort(context: grpc.ServicerContext, method: str, code: grpc.StatusCode, error: Exception) -> NoReturn:
    if isinstance(error, AdvisorError):
        log.info("rejected", extra={"rpc": method, "code": code.name, "error": str(error)})
        context.abort(code, str(error))
    if isinstance(error, grpc.RpcError) and not context.is_active():  # its request stream raised as it went
        _cancelled(context, method)
    incident = uuid.uuid4().hex[:8]
    log.error("internal error", extra={"rpc": method, "incident": incident}, exc_info=error)
    context.abort(code, f"internal error, logged as incident {incident}")


def _cancelled(context: grpc.ServicerContext, method: str) -> NoReturn:
    """The client went away before the answer: its doing, not an incident of ours, and counted as CANCELLED."""
    log.info("cancelled by the client", extra={"rpc": method})
    context.abort(grpc.StatusCode.CANCELLED, "the client cancelled the call")
