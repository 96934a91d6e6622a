"""The calls schedulers wait on are urgent (advisor.usecases.priority) from the moment gRPC hands them to the
server's first interceptor, not only while their use case runs: their token check, interceptors and answer run
ahead of bulk work too."""

from __future__ import annotations

from typing import Any

import grpc

from advisor.api.handlers import Behaviour, Rebuilt, ServerInterceptor, rebuilt
from advisor.usecases.priority import URGENT, Priority

URGENT_METHODS = frozenset({"/advisor.api.v1.RecommendationService/RecommendTarget",
                            "/advisor.api.v1.RecommendationService/PlaceVm"})


class UrgentCalls(ServerInterceptor):
    def __init__(self, methods: frozenset[str] = URGENT_METHODS, priority: Priority = URGENT) -> None:
        self._methods = methods
        self._priority = priority
        self._rebuilt = Rebuilt(lambda handler, _: rebuilt(handler, self._urgent))

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or details.method not in self._methods:
            return handler
        return self._rebuilt(handler, details.method)

    def _urgent(self, behaviour: Behaviour) -> Behaviour:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with self._priority.urgent():
                return behaviour(request, context)

        return call
