"""A small typed client over the generated stubs, for the CLI, the demo, benchmarks and tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import grpc

from advisor.api.v1 import advisor_pb2 as pb
from advisor.api.v1 import advisor_pb2_grpc as pb_grpc


class ClientError(Exception):
    """A call failed; `code` is the gRPC status code's name, e.g. INVALID_ARGUMENT."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


# The interceptor bases are generic only in the type stubs.
if TYPE_CHECKING:
    class _Interceptors(grpc.UnaryUnaryClientInterceptor[Any, Any], grpc.UnaryStreamClientInterceptor[Any, Any],
                        grpc.StreamUnaryClientInterceptor[Any, Any], grpc.StreamStreamClientInterceptor[Any, Any]):
        ...
else:
    class _Interceptors(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                        grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        ...


class _Bearer(_Interceptors):
    """Adds `authorization: Bearer TOKEN` to every call of the channel."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._metadata]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


@dataclass(frozen=True)
class ClientTls:
    """PEM bytes: the CA that signed the server's certificate, and for mutual TLS the client's own pair."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None


# A busy advisor refuses a call at once with RESOURCE_EXHAUSTED, before doing anything: such a call is safe to
# retry, shortly, whatever it is. gRPC's own retry policy does it (backoff 50 ms, doubling, 5 attempts).
RETRY_BUSY = json.dumps({"methodConfig": [{
    "name": [{}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["RESOURCE_EXHAUSTED"]},
}]})


class AdvisorClient:
    def __init__(self, target: str, *, token: str = "", tls: ClientTls | None = None,
                 timeout_s: float = 30.0) -> None:
        options = [("grpc.enable_retries", 1), ("grpc.service_config", RETRY_BUSY)]
        if tls is None:
            channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
            channel = grpc.secure_channel(target, credentials, options=options)
        self._raw_channel = channel
        self.channel = grpc.intercept_channel(channel, _Bearer(token)) if token else channel
        self.timeout_s = timeout_s
        self.inventory = pb_grpc.InventoryServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.telemetry = pb_grpc.TelemetryServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.prediction = pb_grpc.PredictionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.recommendations = pb_grpc.RecommendationServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.migrations = pb_grpc.MigrationServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.automation = pb_grpc.AutomationServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._raw_channel.close()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        try:
            grpc.channel_ready_future(self._raw_channel).result(timeout=timeout_s)
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

    def recommendation_whole(self, rec_id: str) -> pb.Recommendation:
        """The recommendation with every move, paging through ListMoves when its answer could not hold them all."""
        rec = self.get_recommendation(rec_id)
        if rec.moves_total <= len(rec.moves):
            return rec
        del rec.moves[:]
        token = ""
        while True:
            page: pb.ListMovesResponse = self.call(  # type: ignore[assignment]
                self.recommendations.ListMoves, pb.ListMovesRequest(recommendation_id=rec_id, page_token=token))
            rec.moves.extend(page.moves)
            if not (token := page.next_page_token):
                return rec

    def list_assessments(self, rec_id: str, move_index: int = 0, page_size: int = 0) -> Iterator[pb.HostAssessment]:
        """Every host assessed for one move, best first."""
        token = ""
        while True:
            page: pb.ListHostAssessmentsResponse = self.call(  # type: ignore[assignment]
                self.recommendations.ListHostAssessments,
                pb.ListHostAssessmentsRequest(recommendation_id=rec_id, move_index=move_index, page_size=page_size,
                                              page_token=token))
            yield from page.assessments
            if not (token := page.next_page_token):
                return

    def decide(self, rec_id: str, approve: bool, reason: str = "") -> pb.Recommendation:
        """Approve or reject; the advisor records the token's name as who decided."""
        method = self.recommendations.ApproveRecommendation if approve else self.recommendations.RejectRecommendation
        request = pb.DecideRecommendationRequest(id=rec_id, reason=reason)
        return self.call(method, request)  # type: ignore[return-value]

    def execute(self, recommendation_id: str, move_index: int = 0, *, retry: bool = False) -> pb.Operation:
        request = pb.ExecuteMigrationRequest(recommendation_id=recommendation_id, move_index=move_index, retry=retry)
        return self.call(self.migrations.ExecuteMigration, request)  # type: ignore[return-value]

    def run(self, recommendation_id: str) -> pb.Recommendation:
        request = pb.RunRecommendationRequest(id=recommendation_id)
        return self.call(self.migrations.RunRecommendation, request)  # type: ignore[return-value]

    def cancel(self, rec_id: str, reason: str) -> pb.Recommendation:
        request = pb.DecideRecommendationRequest(id=rec_id, reason=reason)
        return self.call(self.recommendations.CancelRecommendation, request)  # type: ignore[return-value]

    def list_migrations(self, *, running_only: bool, limit: int = 0) -> list[pb.Operation]:
        """Operations newest first (at most `limit`, 0: all)."""
        found: list[pb.Operation] = []
        token = ""
        while True:
            size = min(5_000, limit - len(found)) if limit else 0
            page: pb.ListMigrationsResponse = self.call(  # type: ignore[assignment]
                self.migrations.ListMigrations,
                pb.ListMigrationsRequest(running_only=running_only, page_size=size, page_token=token))
            found.extend(page.operations)
            if not (token := page.next_page_token) or (limit and len(found) >= limit):
                return found[:limit] if limit else found

    def automation_settings(self) -> pb.GetAutomationResponse:
        return self.call(self.automation.GetAutomation, pb.GetAutomationRequest())  # type: ignore[return-value]

    def set_automation(self, setting: pb.ClusterAutomation) -> pb.ClusterAutomation:
        return self.call(self.automation.SetAutomation, setting)  # type: ignore[return-value]

    def place(self, request: pb.PlaceVmRequest) -> pb.PlaceVmResponse:
        return self.call(self.recommendations.PlaceVm, request)  # type: ignore[return-value]

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
