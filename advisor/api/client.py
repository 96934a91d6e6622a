"""A small typed client over the generated stubs, for the CLI, the demo, benchmarks and tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Self

import grpc

from advisor.api.v1 import advisor_pb2 as pb
from advisor.api.v1 import advisor_pb2_grpc as pb_grpc


class ClientError(Exception):
    """A call failed; `code` is the gRPC status code's name, e.g. INVALID_ARGUMENT."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class AdvisorClient:
    def __init__(self, target: str, *, timeout_s: float = 30.0) -> None:
        self.channel = grpc.insecure_channel(target)
        self.timeout_s = timeout_s
        self.inventory = pb_grpc.InventoryServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.telemetry = pb_grpc.TelemetryServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.prediction = pb_grpc.PredictionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.recommendations = pb_grpc.RecommendationServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.migrations = pb_grpc.MigrationServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise ClientError("UNAVAILABLE", f"no advisor answered within {timeout_s:g} s") from None

    def call(self, method: object, request: object) -> object:
        try:
            return method(request, timeout=self.timeout_s)  # type: ignore[operator]
        except grpc.RpcError as error:
            raise ClientError(error.code().name, error.details() or "") from None

    def push_inventory(self, request: pb.PushInventoryRequest) -> pb.PushInventoryResponse:
        return self.call(self.inventory.PushInventory, request)  # type: ignore[return-value]

    def push_samples(self, request: pb.PushSamplesRequest) -> pb.PushSamplesResponse:
        return self.call(self.telemetry.PushSamples, request)  # type: ignore[return-value]

    def stream_samples(self, batches: Iterable[pb.PushSamplesRequest]) -> pb.PushSamplesResponse:
        return self.call(self.telemetry.StreamSamples, iter(batches))  # type: ignore[return-value]

    def list_hosts(self) -> Iterator[pb.HostStatus]:
        token = ""
        while True:
            page: pb.ListHostsResponse = self.call(
                self.inventory.ListHosts, pb.ListHostsRequest(page_token=token)
            )  # type: ignore[assignment]
            yield from page.hosts
            if not (token := page.next_page_token):
                return

    def list_vms(self, host_id: str = "") -> Iterator[pb.VmStatus]:
        token = ""
        while True:
            page: pb.ListVmsResponse = self.call(
                self.inventory.ListVms, pb.ListVmsRequest(host_id=host_id, page_token=token)
            )  # type: ignore[assignment]
            yield from page.vms
            if not (token := page.next_page_token):
                return

    def predict(self, request: pb.PredictMigrationCostRequest) -> pb.PredictMigrationCostResponse:
        return self.call(self.prediction.PredictMigrationCost, request)  # type: ignore[return-value]

    def recommend(self, request: pb.RecommendTargetRequest) -> pb.Recommendation:
        return self.call(self.recommendations.RecommendTarget, request)  # type: ignore[return-value]

    def list_recommendations(self, request: pb.ListRecommendationsRequest) -> pb.ListRecommendationsResponse:
        return self.call(self.recommendations.ListRecommendations, request)  # type: ignore[return-value]

    def get_recommendation(self, rec_id: str) -> pb.Recommendation:
        return self.call(  # type: ignore[return-value]
            self.recommendations.GetRecommendation, pb.GetRecommendationRequest(id=rec_id)
        )

    def decide(self, rec_id: str, approve: bool, actor: str, reason: str) -> pb.Recommendation:
        method = self.recommendations.ApproveRecommendation if approve else self.recommendations.RejectRecommendation
        request = pb.DecideRecommendationRequest(id=rec_id, actor=actor, reason=reason)
        return self.call(method, request)  # type: ignore[return-value]

    def execute(self, recommendation_id: str, actor: str, move_index: int = 0) -> pb.Operation:
        request = pb.ExecuteMigrationRequest(recommendation_id=recommendation_id, actor=actor, move_index=move_index)
        return self.call(self.migrations.ExecuteMigration, request)  # type: ignore[return-value]

    def operation(self, operation_id: str) -> pb.Operation:
        request = pb.GetMigrationRequest(operation_id=operation_id)
        return self.call(self.migrations.GetMigration, request)  # type: ignore[return-value]

    def abort(self, operation_id: str, reason: str) -> pb.Operation:
        request = pb.AbortMigrationRequest(operation_id=operation_id, reason=reason)
        return self.call(self.migrations.AbortMigration, request)  # type: ignore[return-value]

    def watch(self, operation_id: str, timeout_s: float = 3600.0) -> Iterator[pb.MigrationProgress]:
        """Progress of an operation until it ends."""
        try:
            yield from self.migrations.WatchMigration(
                pb.WatchMigrationRequest(operation_id=operation_id), timeout=timeout_s
            )
        except grpc.RpcError as error:
            raise ClientError(error.code().name, error.details() or "") from None
