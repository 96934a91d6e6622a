"""The JSON the page is drawn from: what the gRPC API answers, built by the API's own converters and mapped by
protobuf's JSON mapping (lowerCamelCase names, enums by name, defaults left out), so the page, the CLI's `--json`
and the API say the same thing. The one document the API has no message for, the models' live calibration, is
named like the rest.

Each view takes the sources and the checked query and returns a JSON-ready dict; errors are the use cases' own
(InvalidArgument, NotFound), which the handler maps to 400 and 404.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from advisor.api import convert
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.access import AuditTrail, TokenCheck
from advisor.domain.errors import InvalidArgument, Unavailable
from advisor.domain.model import Move, Objective, PlanGoal, Technique
from advisor.domain.recommendation import Recommendation
from advisor.domain.sessions import Sessions
from advisor.ml.calibration import RunningErrors
from advisor.usecases.bundle import UseCases
from advisor.usecases.estimates import CostEstimator
from advisor.web.params import Query

# A page of recommendations stops before this many bytes, as the API's listing does (standard clients: 4 MiB).
PAGE_BYTES = 3 << 20


@dataclass(frozen=True)
class WebSources:
    """What the page reads and whom it lets in, given by advisor/app.py."""

    usecases: UseCases
    estimator: CostEstimator
    errors: RunningErrors  # the running prediction error (the MigrationOutcomes observer's)
    drift_error_ratio: float
    tokens: TokenCheck
    sessions: Sessions
    audit: AuditTrail
    clock: Callable[[], float]
    page_allowed: bool  # the page is served over TLS or on loopback, unless plain HTTP beyond it was allowed


def as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def recommendations(src: WebSources, q: Query) -> dict[str, Any]:
    """ListRecommendationsResponse: newest first, optionally in one state; moves without their assessments."""
    state = q.state()
    review = src.usecases.review
    recs, token = review.page(state, q.page_size(), q.page_token())
    page = pb.ListRecommendationsResponse()
    size = 0
    for i, rec in enumerate(recs):
        msg = convert.fitted(convert.recommendation_to_pb(rec, with_assessments=False))
        size += msg.ByteSize() + 8
        if size > PAGE_BYTES and i > 0:
            token = review.token_after(state, recs[i - 1])
            break
        page.recommendations.append(msg)
    page.next_page_token = token
    return as_json(page)


def recommendation(src: WebSources, q: Query) -> dict[str, Any]:
    """Recommendation, as GetRecommendation answers it."""
    return as_json(convert.fitted(convert.recommendation_to_pb(src.usecases.review.get(q.ident("id")))))


def assessments(src: WebSources, q: Query) -> dict[str, Any]:
    """ListHostAssessmentsResponse: every host assessed for one move, best first (the "why not" panel)."""
    found, token, total = src.usecases.review.assessments(q.ident("recommendation_id"), q.move_index(),
                                                          q.page_size(), q.page_token())
    return as_json(pb.ListHostAssessmentsResponse(assessments=[convert.assessment_to_pb(a) for a in found],
                                                  next_page_token=token, total=total))


def migrations(src: WebSources, q: Query) -> dict[str, Any]:
    """ListMigrationsResponse: those under way (`running_only=true`), or all of them newest first."""
    found, token = src.usecases.migrations.page(q.flag("running_only"), q.page_size(), q.page_token())
    return as_json(pb.ListMigrationsResponse(operations=[convert.operation_to_pb(r) for r in found],
                                             next_page_token=token))


def migration(src: WebSources, q: Query) -> dict[str, Any]:
    """Operation, as GetMigration answers it."""
    return as_json(convert.operation_to_pb(src.usecases.migrations.operation(q.ident("operation_id"))))


def progress(src: WebSources, q: Query) -> dict[str, Any]:
    """MigrationProgress now: the message WatchMigration would stream first (the monitor's estimate)."""
    watched = src.usecases.migrations.watch(q.ident("operation_id"))
    try:
        current = next(watched)
    finally:
        if isinstance(watched, Generator):
            watched.close()  # the first message is the one wanted: stop watching now
    return as_json(convert.progress_to_pb(*current))


def hosts(src: WebSources, q: Query) -> dict[str, Any]:
    """ListHostsResponse, in id order (the drain preview's choice of host)."""
    views, token = src.usecases.queries.list_hosts(q.page_size(), q.page_token())
    return as_json(pb.ListHostsResponse(hosts=[convert.host_view_to_pb(v) for v in views], next_page_token=token))


def vms(src: WebSources, q: Query) -> dict[str, Any]:
    """ListVmsResponse: the VMs on `host_id` (all without it) in id order, with their disks and networks."""
    views, token = src.usecases.queries.list_vms(q.ident("host_id") if "host_id" in q.values else "",
                                                 q.page_size(), q.page_token())
    return as_json(pb.ListVmsResponse(vms=[convert.vm_view_to_pb(v) for v in views], next_page_token=token))


def _move(move: Move) -> dict[str, str]:
    return {"vmId": move.vm_id, "sourceHostId": move.source_host_id, "targetHostId": move.target_host_id}


def cluster(src: WebSources, q: Query) -> dict[str, Any]:
    """Every host's load now and after the moves of a recommendation (`recommendation_id`, stored) or of a dry-run
    drain of a host (`drain_host_id`, planned now and stored nowhere, the plan itself in `plan`); the moves into
    and out of it, its VMs, networks, local disk free; the operations into and out of it, running and recent.
    The API has no message for this: the fields are those of advisor.usecases.cluster_view.HostLoad, named
    alike, unknown ones left out; operations are listed once, as the API's Operation, and named by id in each
    host's."""
    if "recommendation_id" in q.values and "drain_host_id" in q.values:
        raise InvalidArgument("drain_host_id", "cannot be given with recommendation_id: the view shows one plan")
    plan = _dry_run_drain(src, q.ident("drain_host_id")) if "drain_host_id" in q.values else None
    if plan is not None:
        found = src.usecases.cluster.after(plan)
    else:
        found = src.usecases.cluster.loads(q.ident("recommendation_id") if "recommendation_id" in q.values else "")
    operations: dict[str, dict[str, Any]] = {}
    hosts = []
    for h in found.hosts:
        for record in (*h.running, *h.recent):
            if record.operation_id not in operations:
                operations[record.operation_id] = as_json(convert.operation_to_pb(record))
        doc: dict[str, Any] = {"hostId": h.host_id, "cores": h.cores, "memoryMib": h.memory_mib,
                               "disabled": h.disabled, "cpuRatio": h.cpu_ratio, "memoryRatio": h.memory_ratio,
                               "vmCount": h.vm_count, "vmIds": list(h.vm_ids), "networks": list(h.networks),
                               "diskFreeMib": h.disk_free_mib, "cpuMeasuredRatio": h.cpu_measured_ratio,
                               "cpuRatioAfter": h.cpu_ratio_after,
                               "memoryRatioAfter": h.memory_ratio_after, "vmCountAfter": h.vm_count_after,
                               "diskFreeMibAfter": h.disk_free_mib_after,
                               "movesIn": [_move(m) for m in h.moves_in], "movesOut": [_move(m) for m in h.moves_out],
                               "runningOperationIds": [r.operation_id for r in h.running],
                               "recentOperationIds": [r.operation_id for r in h.recent]}
        hosts.append({k: v for k, v in doc.items() if v is not None})
    doc = {"hosts": hosts, "operations": list(operations.values())}
    if found.recommendation is not None:
        doc.update(movesApplied=found.moves_applied, movesSkipped=found.moves_skipped)
    if plan is not None:
        doc.update(drainHostId=q.values["drain_host_id"],
                   plan=as_json(convert.fitted(convert.recommendation_to_pb(plan))))
    elif found.recommendation is not None:
        doc.update(recommendationId=found.recommendation.id)
    return doc


_one_drain_at_a_time = threading.Lock()


def _dry_run_drain(src: WebSources, host_id: str) -> Recommendation:
    """A drain of one host planned now as PlanCluster with dry_run: nothing is stored. One is computed at a time:
    a large cluster's plan takes seconds, and a reader must not be able to queue many."""
    if not _one_drain_at_a_time.acquire(blocking=False):
        raise Unavailable("a drain preview is being computed; try again in a moment")
    try:
        return src.usecases.planning.plan_cluster(PlanGoal.DRAIN, host_id, 0, Objective(), dry_run=True)
    finally:
        _one_drain_at_a_time.release()


def drain(src: WebSources, q: Query) -> dict[str, Any]:
    """Recommendation of a dry-run drain of one host (as PlanCluster with dry_run): nothing is stored."""
    return as_json(convert.fitted(convert.recommendation_to_pb(_dry_run_drain(src, q.ident("host_id")))))


def automation(src: WebSources, q: Query) -> dict[str, Any]:
    """GetAutomationResponse: every cluster's automation level and threshold."""
    return as_json(pb.GetAutomationResponse(
        clusters=[convert.automation_to_pb(a) for a in src.usecases.automation.settings()]))


def models(src: WebSources, q: Query) -> dict[str, Any]:
    """The models serving now (ModelInfo each) and their running error per technique and quantity. The API has
    no message for the calibration: its fields are those of advisor.ml.calibration.RunningError, named alike."""
    forecaster = src.estimator.forecaster
    calibration = [{
        "technique": pb.Technique.Name(convert.technique_to_pb(Technique(e.technique))),
        "quantity": e.quantity, "n": e.n, "medianApe": e.median_ape, "coverage": e.coverage, "drift": e.drift,
        "model": e.model,
    } for e in src.errors.summary()]
    doc: dict[str, Any] = {"costModel": as_json(convert.model_to_pb(src.estimator.predictor.model)),
                           "calibration": calibration, "driftErrorRatio": src.drift_error_ratio}
    if forecaster is not None:
        doc["dirtyRateForecaster"] = as_json(convert.model_to_pb(forecaster.model))
    return doc


@dataclass(frozen=True)
class View:
    read: Callable[[WebSources, Query], dict[str, Any]]
    parameters: frozenset[str]


PAGED = frozenset({"page_size", "page_token"})
VIEWS: dict[str, View] = {
    "models": View(models, frozenset()),
    "automation": View(automation, frozenset()),
    "recommendations": View(recommendations, PAGED | {"state"}),
    "recommendation": View(recommendation, frozenset({"id"})),
    "assessments": View(assessments, PAGED | {"recommendation_id", "move_index"}),
    "migrations": View(migrations, PAGED | {"running_only"}),
    "migration": View(migration, frozenset({"operation_id"})),
    "progress": View(progress, frozenset({"operation_id"})),
    "hosts": View(hosts, PAGED),
    "vms": View(vms, PAGED | {"host_id"}),
    "cluster": View(cluster, frozenset({"recommendation_id", "drain_host_id"})),
    "drain": View(drain, frozenset({"host_id"})),
}
