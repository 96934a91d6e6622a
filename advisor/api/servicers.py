"""Thin servicers: convert the message, call a use case, convert the answer. Nothing decides here; an error raised
here is answered by advisor.api.errors."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from advisor.api import answers, convert
from advisor.api.auth import current_caller
from advisor.api.errors import MalformedRequest
from advisor.api.sample_messages import samples_from_pb
from advisor.api.v1 import advisor_pb2 as pb
from advisor.api.v1 import advisor_pb2_grpc as pb_grpc
from advisor.domain.errors import DeadlineExceeded, InvalidArgument, NotFound
from advisor.domain.model import PlanGoal
from advisor.domain.recommendation import Decision
from advisor.features.inputs import Overrides
from advisor.features.sample_columns import VmColumns
from advisor.metrics import AdvisorMetrics
from advisor.usecases.bundle import UseCases
from advisor.usecases.priority import URGENT

# A page of recommendations stops before this many bytes: standard gRPC clients accept at most 4 MiB.
PAGE_BYTES = convert.PAGE_BYTES


@dataclass(frozen=True)
class StreamLimits:
    """How long a client stream may stay silent, and last in all, before the advisor ends it."""

    idle_s: float = 30.0
    total_s: float = 3600.0


class _Base:
    def __init__(self, usecases: UseCases, metrics: AdvisorMetrics, streams: StreamLimits = StreamLimits()) -> None:
        self.usecases = usecases
        self.metrics = metrics
        self.streams = streams


class InventoryServicer(_Base, pb_grpc.InventoryServiceServicer):
    def PushInventory(
        self, request: pb.PushInventoryRequest, context: grpc.ServicerContext
    ) -> pb.PushInventoryResponse:
        change = convert.inventory_from_pb(request)
        try:
            self.usecases.ingestion.push_inventory(change)
        except Exception:
            self.metrics.batches_rejected.labels("PushInventory").inc()
            raise
        return pb.PushInventoryResponse(
            hosts_upserted=len(change.hosts), vms_upserted=len(change.vms),
            hosts_removed=len(change.removed_host_ids), vms_removed=len(change.removed_vm_ids),
        )

    def ListHosts(self, request: pb.ListHostsRequest, context: grpc.ServicerContext) -> pb.ListHostsResponse:
        views, token = self.usecases.queries.list_hosts(request.page_size, request.page_token)
        return pb.ListHostsResponse(hosts=[convert.host_view_to_pb(v) for v in views], next_page_token=token)

    def ListVms(self, request: pb.ListVmsRequest, context: grpc.ServicerContext) -> pb.ListVmsResponse:
        views, token = self.usecases.queries.list_vms(request.host_id, request.page_size, request.page_token)
        return pb.ListVmsResponse(vms=[convert.vm_view_to_pb(v) for v in views], next_page_token=token)


class TelemetryServicer(_Base, pb_grpc.TelemetryServiceServicer):
    def _push(self, request: pb.PushSamplesRequest | VmColumns, method: str) -> tuple[int, int]:
        """A message's samples checked and stored; VM samples alone may come as columns (samples_parser)."""
        try:
            hosts, vms = ([], request) if isinstance(request, VmColumns) else samples_from_pb(request, URGENT.give_way)
            self.usecases.ingestion.push_samples(hosts, vms)
        except Exception:
            self.metrics.batches_rejected.labels(method).inc()
            raise
        return len(hosts), len(vms)

    def PushSamples(self, request: pb.PushSamplesRequest | VmColumns,
                    context: grpc.ServicerContext) -> pb.PushSamplesResponse:
        hosts, vms = self._push(request, "PushSamples")
        return pb.PushSamplesResponse(host_samples_accepted=hosts, vm_samples_accepted=vms, batches_accepted=1)

    def StreamSamples(
        self, request_iterator: Iterator[pb.PushSamplesRequest], context: grpc.ServicerContext
    ) -> pb.PushSamplesResponse:
        totals = pb.PushSamplesResponse()
        for n, request in enumerate(_paced(request_iterator, self.streams, context)):
            try:
                if isinstance(request, MalformedRequest):
                    raise request.error()
                hosts, vms = self._push(request, "StreamSamples")
            except (InvalidArgument, NotFound) as error:
                raise error.within(f"message[{n}]", f"{n} earlier message(s) were stored") from error
            totals.host_samples_accepted += hosts
            totals.vm_samples_accepted += vms
            totals.batches_accepted += 1
        return totals


class PredictionServicer(_Base, pb_grpc.PredictionServiceServicer):
    def PredictMigrationCost(
        self, request: pb.PredictMigrationCostRequest, context: grpc.ServicerContext
    ) -> pb.PredictMigrationCostResponse:
        techniques = [convert.technique_from_pb(t, f"techniques[{i}]") for i, t in enumerate(request.techniques)]

        def optional(name: str) -> float | None:
            return getattr(request, name) if request.HasField(name) else None

        overrides = Overrides(
            dirty_rate_mib_s=optional("dirty_rate_mib_s"), bandwidth_mib_s=optional("bandwidth_mib_s"),
            max_bandwidth_mib_s=optional("max_bandwidth_mib_s"), max_downtime_ms=optional("max_downtime_ms"),
        )
        result = self.usecases.advice.predict_cost(request.vm_id, request.target_host_id, techniques, overrides)
        answer = pb.PredictMigrationCostResponse(inputs=convert.inputs_to_pb(result.inputs))
        for cost in result.costs:
            convert.fill_cost(answer.costs.add(), cost)
        return answer


class RecommendationServicer(_Base, pb_grpc.RecommendationServiceServicer):
    def RecommendTarget(self, request: pb.RecommendTargetRequest, context: grpc.ServicerContext) -> pb.Recommendation:
        rec = self.usecases.advice.recommend_target(
            request.vm_id, convert.objective_from_pb(request.objective), list(request.excluded_host_ids),
            dry_run=request.dry_run,
        )
        return convert.fitted(convert.recommendation_to_pb(rec))

    def PlanCluster(self, request: pb.PlanClusterRequest, context: grpc.ServicerContext) -> pb.Recommendation:
        goals = {pb.CLUSTER_GOAL_DRAIN: PlanGoal.DRAIN, pb.CLUSTER_GOAL_REBALANCE: PlanGoal.REBALANCE,
                 pb.CLUSTER_GOAL_CONSOLIDATE: PlanGoal.CONSOLIDATE, pb.CLUSTER_GOAL_EVACUATE: PlanGoal.EVACUATE}
        if request.goal not in goals:
            raise InvalidArgument("goal", f"must be DRAIN, REBALANCE, CONSOLIDATE or EVACUATE (got {request.goal})")
        rec = self.usecases.planning.plan_cluster(goals[request.goal], request.host_id, request.max_moves,
                                                  convert.objective_from_pb(request.objective),
                                                  dry_run=request.dry_run, store_empty=request.store_empty,
                                                  force=request.force)
        return answers.fitted_recommendation(rec)

    def ListRecommendations(
        self, request: pb.ListRecommendationsRequest, context: grpc.ServicerContext
    ) -> pb.ListRecommendationsResponse:
        state = convert.state_from_pb(request.state, "state")
        recs, token = self.usecases.review.page(state, request.page_size, request.page_token)
        page = pb.ListRecommendationsResponse()
        size = 0
        for i, rec in enumerate(recs):
            msg = convert.fitted(convert.recommendation_to_pb(rec, with_assessments=False))
            size += msg.ByteSize() + 8
            if size > PAGE_BYTES and i > 0:  # what a standard client accepts (4 MiB), with room to spare
                token = self.usecases.review.token_after(state, recs[i - 1])
                break
            page.recommendations.append(msg)
        page.next_page_token = token
        return page

    def ListHostAssessments(
        self, request: pb.ListHostAssessmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListHostAssessmentsResponse:
        found, token, total = self.usecases.review.assessments(request.recommendation_id, request.move_index,
                                                               request.page_size, request.page_token)
        return pb.ListHostAssessmentsResponse(assessments=[convert.assessment_to_pb(a) for a in found],
                                              next_page_token=token, total=total)

    def ListMoves(self, request: pb.ListMovesRequest, context: grpc.ServicerContext) -> pb.ListMovesResponse:
        rec = self.usecases.review.get(request.recommendation_id, "recommendation_id")
        moves, token = self.usecases.review.moves(rec, request.page_size, request.page_token)
        return pb.ListMovesResponse(
            moves=[convert.move_to_pb(m, with_assessments=False, status=rec.status(i)) for i, m in moves],
            next_page_token=token)

    def GetRecommendation(
        self, request: pb.GetRecommendationRequest, context: grpc.ServicerContext
    ) -> pb.Recommendation:
        return convert.fitted(convert.recommendation_to_pb(self.usecases.review.get(request.id)))

    def ApproveRecommendation(
        self, request: pb.DecideRecommendationRequest, context: grpc.ServicerContext
    ) -> pb.Recommendation:
        rec = self.usecases.review.decide(request.id, Decision.APPROVE, current_caller().name, request.reason)
        return convert.fitted(convert.recommendation_to_pb(rec))

    def RejectRecommendation(
        self, request: pb.DecideRecommendationRequest, context: grpc.ServicerContext
    ) -> pb.Recommendation:
        rec = self.usecases.review.decide(request.id, Decision.REJECT, current_caller().name, request.reason)
        return convert.fitted(convert.recommendation_to_pb(rec))

    def CancelRecommendation(
        self, request: pb.DecideRecommendationRequest, context: grpc.ServicerContext
    ) -> pb.Recommendation:
        rec = self.usecases.migrations.cancel(request.id, current_caller().name, request.reason)
        return convert.fitted(convert.recommendation_to_pb(rec))

    def PlaceVm(self, request: pb.PlaceVmRequest, context: grpc.ServicerContext) -> pb.PlaceVmResponse:
        if not request.HasField("vm"):
            raise InvalidArgument("vm", "is required")
        placed = self.usecases.advice.place_vm(convert.vm_from_pb(request.vm), list(request.excluded_host_ids))
        return pb.PlaceVmResponse(
            host_id=placed.host_id, placed=placed.placed, automation_level=str(placed.level), cluster=placed.cluster,
            placed_by=placed.placed_by, reasons=list(placed.reasons),
            assessments=[convert.assessment_to_pb(a) for a in placed.kept],
            rejection_counts=[pb.RejectionCount(filter=k, hosts=n, example_host_id=h)
                              for k, n, h in placed.rejection_counts],
        )


class AutomationServicer(_Base, pb_grpc.AutomationServiceServicer):
    def GetAutomation(self, request: pb.GetAutomationRequest,
                      context: grpc.ServicerContext) -> pb.GetAutomationResponse:
        return pb.GetAutomationResponse(
            clusters=[convert.automation_to_pb(a) for a in self.usecases.automation.settings()])

    def SetAutomation(self, request: pb.ClusterAutomation, context: grpc.ServicerContext) -> pb.ClusterAutomation:
        setting = self.usecases.automation.set(request.cluster, request.level, request.min_benefit_over_cost,
                                               current_caller().name)
        return convert.automation_to_pb(setting)


class MigrationServicer(_Base, pb_grpc.MigrationServiceServicer):
    def ExecuteMigration(self, request: pb.ExecuteMigrationRequest, context: grpc.ServicerContext) -> pb.Operation:
        return convert.operation_to_pb(self.usecases.migrations.execute(
            request.recommendation_id, current_caller().name, request.move_index, retry=request.retry))

    def RunRecommendation(self, request: pb.RunRecommendationRequest,
                          context: grpc.ServicerContext) -> pb.Recommendation:
        rec = self.usecases.migrations.run(request.id, current_caller().name)
        return convert.fitted(convert.recommendation_to_pb(rec))

    def ListMigrations(self, request: pb.ListMigrationsRequest,
                       context: grpc.ServicerContext) -> pb.ListMigrationsResponse:
        found, token = self.usecases.migrations.page(request.running_only, request.page_size, request.page_token)
        return pb.ListMigrationsResponse(operations=[convert.operation_to_pb(r) for r in found], next_page_token=token)

    def WatchMigration(
        self, request: pb.WatchMigrationRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.MigrationProgress]:
        events = self.usecases.migrations.watch(request.operation_id, alive=context.is_active)
        first = next(events)  # errors such as NOT_FOUND end the call here, before it streams (and are audited)

        def stream() -> Iterator[pb.MigrationProgress]:
            yield convert.progress_to_pb(*first)
            for watched in events:
                if not context.is_active():
                    return
                yield convert.progress_to_pb(*watched)

        return stream()

    def AbortMigration(self, request: pb.AbortMigrationRequest, context: grpc.ServicerContext) -> pb.Operation:
        caller = current_caller().name
        return convert.operation_to_pb(self.usecases.migrations.abort(request.operation_id, request.reason, caller))

    def GetMigration(self, request: pb.GetMigrationRequest, context: grpc.ServicerContext) -> pb.Operation:
        return convert.operation_to_pb(self.usecases.migrations.operation(request.operation_id))


def _paced(requests: Iterator[Any], limits: StreamLimits, context: grpc.ServicerContext) -> Iterator[Any]:
    """The messages of a client stream, ending the call with DEADLINE_EXCEEDED when the client stays silent
    longer than `limits.idle_s` or the stream outlasts `limits.total_s`. Messages are read by a thread of their
    own, so a silent client never blocks this one (the reader ends with the call)."""
    arrivals: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)

    def read() -> None:
        try:
            for message in requests:
                arrivals.put(("message", message))
            arrivals.put(("end", None))
        except Exception as error:  # the call ended under the reader (cancelled, or aborted by us)
            arrivals.put(("error", error))

    threading.Thread(target=read, name="stream-reader", daemon=True).start()
    ends = time.monotonic() + limits.total_s
    while True:
        wait = min(limits.idle_s, ends - time.monotonic())
        try:
            kind, item = arrivals.get(timeout=max(0.0, wait))
        except queue.Empty:
            why = (f"no message for {limits.idle_s:g} s" if wait == limits.idle_s
                   else f"the stream lasted longer than {limits.total_s:g} s")
            raise DeadlineExceeded(f"{why}: the advisor ended the stream") from None
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item
