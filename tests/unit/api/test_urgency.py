"""RecommendTarget and PlaceVm are urgent from the server's first interceptor on; other calls are not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from advisor.api.urgency import URGENT_METHODS, UrgentCalls
from advisor.api.v1 import advisor_pb2 as pb
from advisor.usecases.priority import Priority


class Counted(Priority):
    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.seen: list[int] = []

    @contextmanager
    def urgent(self) -> Iterator[None]:
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1


class Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def test_the_urgent_methods_are_the_services_own() -> None:
    methods = {f"/{s.full_name}/{m.name}" for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert methods >= URGENT_METHODS and len(URGENT_METHODS) == 2


def test_only_the_urgent_methods_run_as_urgent() -> None:
    priority = Counted()
    interceptor = UrgentCalls(priority=priority)

    def behaviour(request: Any, context: Any) -> int:
        priority.seen.append(priority.inside)
        return request

    handler = grpc.unary_unary_rpc_method_handler(behaviour)
    for method in ("/advisor.api.v1.RecommendationService/RecommendTarget",
                   "/advisor.api.v1.PredictionService/PredictMigrationCost",
                   "/advisor.api.v1.RecommendationService/PlaceVm"):
        wrapped = interceptor.intercept_service(lambda details: handler, Details(method))
        assert wrapped.unary_unary(7, None) == 7
    assert priority.seen == [1, 0, 1] and priority.inside == 0
    assert interceptor.intercept_service(lambda details: None, Details("/x/Unknown")) is None
