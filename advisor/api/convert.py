"""Messages to domain values and back. No decisions here; value checks live in advisor.domain.validation."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator

from google.protobuf.timestamp_pb2 import Timestamp

from advisor.api.sample_messages import optional
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.assessments import HostAssessment
from advisor.domain.automation import ClusterAutomation
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument
from advisor.domain.migration import MigrationRecord, Phase, Progress
from advisor.domain.model import (
    DEFAULT_MAX_DOWNTIME_MS,
    DEFAULT_NETWORK_BANDWIDTH_MIB_S,
    Disk,
    Host,
    Interval,
    MigrationCost,
    MigrationInputs,
    MigrationParameters,
    ModelRef,
    Move,
    MoveKind,
    Objective,
    Technique,
    Vm,
)
from advisor.domain.recommendation import MoveStatus, Recommendation, RecommendationState
from advisor.execution.monitor import Estimate
from advisor.usecases.queries import HostView, VmView

# What a standard gRPC client accepts is 4 MiB: answers stop at 3, with room to spare.
PAGE_BYTES = 3 << 20

# -- in ------------------------------------------------------------------------------------------------------


def technique_from_pb(value: int, field: str) -> Technique:
    if value == pb.TECHNIQUE_UNSPECIFIED or value not in pb.Technique.values():
        raise InvalidArgument(field, f"must be a known technique (got {value})")
    return Technique[pb.Technique.Name(value).removeprefix("TECHNIQUE_")]


def state_from_pb(value: int, field: str) -> RecommendationState | None:
    if value == pb.RECOMMENDATION_STATE_UNSPECIFIED:
        return None
    if value not in pb.RecommendationState.values():
        raise InvalidArgument(field, f"must be a known state (got {value})")
    return RecommendationState[pb.RecommendationState.Name(value).removeprefix("RECOMMENDATION_STATE_")]


def host_from_pb(m: pb.Host) -> Host:
    return Host(
        id=m.id,
        cpu_cores=m.cpu_cores,
        memory_mib=m.memory_mib,
        cpu_model=m.cpu_model,
        labels=dict(m.labels),
        in_maintenance=m.in_maintenance,
        network_bandwidth_mib_s=m.network_bandwidth_mib_s or DEFAULT_NETWORK_BANDWIDTH_MIB_S,
        hypervisor_uri=m.hypervisor_uri,
        migration_address=m.migration_address,
        idle_power_w=m.idle_power_w,
        max_power_w=m.max_power_w,
        migration_tls=m.migration_tls,
        networks=frozenset(m.networks),
        local_disk_free_mib=optional(m, "local_disk_free_mib"),
    )


def disk_from_pb(m: pb.Disk) -> Disk:
    return Disk(target=m.target, size_mib=m.size_mib, used_mib=m.used_mib, shared=m.shared,
                write_rate_mib_s=optional(m, "write_rate_mib_s"))


def vm_from_pb(m: pb.Vm) -> Vm:
    return Vm(
        id=m.id,
        host_id=m.host_id,
        memory_mib=m.memory_mib,
        vcpus=m.vcpus,
        labels=dict(m.labels),
        affinity_groups=frozenset(m.affinity_groups),
        anti_affinity_groups=frozenset(m.anti_affinity_groups),
        cpu_model=m.cpu_model,
        postcopy_allowed=not m.postcopy_forbidden,
        networks=frozenset(m.networks),
        disks=tuple(disk_from_pb(d) for d in m.disks),
    )


def inventory_from_pb(m: pb.PushInventoryRequest) -> InventoryChange:
    return InventoryChange(
        hosts=tuple(host_from_pb(h) for h in m.hosts),
        vms=tuple(vm_from_pb(v) for v in m.vms),
        removed_host_ids=tuple(m.removed_host_ids),
        removed_vm_ids=tuple(m.removed_vm_ids),
    )


def objective_from_pb(m: pb.Objective) -> Objective:
    """The objective asked for; an unset downtime limit is QEMU's default (an explicit 0 is kept, to be refused)."""
    return Objective(
        max_downtime_ms=m.max_downtime_ms if m.HasField("max_downtime_ms") else DEFAULT_MAX_DOWNTIME_MS,
        deadline_ms=m.deadline_ms, minimize_transferred=m.minimize_transferred,
    )


# -- out -----------------------------------------------------------------------------------------------------


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


def host_to_pb(h: Host) -> pb.Host:
    return pb.Host(
        id=h.id, cpu_cores=h.cpu_cores, memory_mib=h.memory_mib, cpu_model=h.cpu_model, labels=dict(h.labels),
        in_maintenance=h.in_maintenance, network_bandwidth_mib_s=h.network_bandwidth_mib_s,
        hypervisor_uri=h.hypervisor_uri, migration_address=h.migration_address, idle_power_w=h.idle_power_w,
        max_power_w=h.max_power_w, migration_tls=h.migration_tls, networks=sorted(h.networks),
        local_disk_free_mib=None if h.local_disk_free_mib is None else round(h.local_disk_free_mib),
    )


def disk_to_pb(d: Disk) -> pb.Disk:
    return pb.Disk(target=d.target, size_mib=round(d.size_mib), used_mib=round(d.used_mib), shared=d.shared,
                   write_rate_mib_s=d.write_rate_mib_s)


def vm_to_pb(v: Vm) -> pb.Vm:
    return pb.Vm(
        id=v.id, host_id=v.host_id, memory_mib=v.memory_mib, vcpus=v.vcpus, labels=dict(v.labels),
        affinity_groups=sorted(v.affinity_groups), anti_affinity_groups=sorted(v.anti_affinity_groups),
        cpu_model=v.cpu_model, postcopy_forbidden=not v.postcopy_allowed, networks=sorted(v.networks),
        disks=[disk_to_pb(d) for d in v.disks],
    )


def host_view_to_pb(v: HostView) -> pb.HostStatus:
    msg = pb.HostStatus(
        host=host_to_pb(v.host), vm_count=v.vm_count, allocated_memory_mib=v.allocated_memory_mib,
        allocated_vcpus=v.allocated_vcpus,
    )
    if v.cpu_utilization is not None:
        msg.cpu_utilization_ratio = v.cpu_utilization
    if v.last_sample_s is not None:
        msg.last_sample_time.CopyFrom(timestamp(v.last_sample_s))
    return msg


def vm_view_to_pb(v: VmView) -> pb.VmStatus:
    msg = pb.VmStatus(vm=vm_to_pb(v.vm))
    if v.cpu_utilization is not None:
        msg.cpu_utilization_ratio = v.cpu_utilization
    if v.dirty_rate_mib_s is not None:
        msg.dirty_rate_mib_s = v.dirty_rate_mib_s
    if v.last_sample_s is not None:
        msg.last_sample_time.CopyFrom(timestamp(v.last_sample_s))
    return msg


_TECHNIQUE_PB = {t: int(pb.Technique.Value(f"TECHNIQUE_{t.name}")) for t in Technique}


def technique_to_pb(t: Technique) -> int:
    return _TECHNIQUE_PB[t]


def _estimate(i: Interval) -> pb.Estimate:
    return pb.Estimate(low=i.low, median=i.median, high=i.high)


def model_to_pb(m: ModelRef) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=m.name, version=m.version, interval_kind=m.interval_kind, fallback_reason=m.fallback_reason
    )


@functools.lru_cache(maxsize=16)
def _served_model(m: ModelRef) -> pb.ModelInfo:
    """model_to_pb once per model: every cost of an answer names one (a message given to a constructor is copied,
    so the one kept is never changed)."""
    return model_to_pb(m)


def cost_to_pb(c: MigrationCost, unknown: tuple[str, ...] = ()) -> pb.MigrationCost:
    msg = pb.MigrationCost()
    fill_cost(msg, c, unknown)
    return msg


def fill_cost(msg: pb.MigrationCost, c: MigrationCost, unknown: tuple[str, ...] = ()) -> None:
    """`cost_to_pb` into an empty message already in place (e.g. `answer.costs.add()`): a message made apart and
    given to its parent is copied once more."""
    msg.technique = _TECHNIQUE_PB[c.technique]  # type: ignore[assignment]
    msg.converges = c.converges
    msg.model.CopyFrom(_served_model(c.model))
    msg.notes.extend(c.notes)
    # filled in place: an Estimate made apart is copied in again (setting a field, even to 0, makes one present)
    for field, interval in ((msg.total_time_ms, c.total_time_ms), (msg.downtime_ms, c.downtime_ms),
                            (msg.transferred_mib, c.transferred_mib)):
        field.low, field.median, field.high = interval.low, interval.median, interval.high
    if c.converge_probability is not None:
        msg.converge_probability = c.converge_probability
    for name in unknown:  # fields the cost has but that mean nothing here
        msg.ClearField(name)


def inputs_to_pb(i: MigrationInputs) -> pb.MigrationInputs:
    return pb.MigrationInputs(
        memory_mib=i.memory_mib, dirty_rate_mib_s=i.dirty_rate_mib_s, dirty_rate_source=i.dirty_rate_source,
        bandwidth_mib_s=i.bandwidth_mib_s, max_bandwidth_mib_s=i.max_bandwidth_mib_s,
        max_downtime_ms=i.max_downtime_ms, bandwidth_source=i.bandwidth_source,
        local_disk_used_mib=i.local_disk_used_mib, local_disk_size_mib=i.local_disk_size_mib,
        disk_write_rate_mib_s=i.disk_write_rate_mib_s, load_per_cpu_ratio=i.load_per_cpu,
        resident_memory_mib=i.resident_memory_mib,
    )


def parameters_to_pb(p: MigrationParameters) -> pb.MigrationParameters:
    if p.kind is MoveKind.RESTART:  # no technique, no knob: a restart
        return pb.MigrationParameters(kind=pb.MOVE_KIND_RESTART)
    msg = pb.MigrationParameters(
        technique=technique_to_pb(p.technique),  # type: ignore[arg-type]
        kind=pb.MOVE_KIND_MIGRATE,
        bandwidth_mib_s=p.bandwidth_mib_s, max_downtime_ms=p.max_downtime_ms,
        deadline_ms=p.deadline_ms, autoconverge_initial_pct=p.autoconverge_initial_pct,
        autoconverge_increment_pct=p.autoconverge_increment_pct, compression_threads=p.compression_threads,
        postcopy_bandwidth_mib_s=p.postcopy_bandwidth_mib_s, tls=p.tls,
        shutdown_timeout_ms=p.shutdown_timeout_ms, migrate_disks=list(p.migrate_disks),
    )
    if p.postcopy_after_ms is not None:
        msg.postcopy_after_ms = p.postcopy_after_ms
    return msg


def _predicted(p: MigrationParameters, cost: MigrationCost) -> pb.MigrationCost:
    """A move's predicted cost; a restart has no technique, and its downtime (from the host's death) is unknown."""
    return cost_to_pb(cost, unknown=("technique", "downtime_ms") if p.kind is MoveKind.RESTART else ())


def assessment_to_pb(a: HostAssessment) -> pb.HostAssessment:
    return pb.HostAssessment(
        host_id=a.host_id, eligible=a.eligible, rejections=list(a.rejections), score=a.score or 0.0,
        cpu_after_ratio=a.cpu_after or 0.0, memory_after_ratio=a.memory_after or 0.0,
    )


def move_to_pb(m: Move, *, with_assessments: bool = True, status: MoveStatus = MoveStatus()) -> pb.Move:  # noqa: B008 - frozen dataclass defaults are safe to share
    return pb.Move(
        vm_id=m.vm_id, source_host_id=m.source_host_id, target_host_id=m.target_host_id,
        parameters=parameters_to_pb(m.parameters), predicted_cost=_predicted(m.parameters, m.predicted_cost),
        reasons=list(m.reasons),
        assessments=[assessment_to_pb(a) for a in m.assessments] if with_assessments else [],
        rejection_counts=[pb.RejectionCount(filter=k, hosts=n, example_host_id=h) for k, n, h in m.rejection_counts],
        hosts_assessed=m.hosts_assessed,
        state=pb.MoveState.Value(f"MOVE_STATE_{status.state.name}"),  # type: ignore[arg-type]
        attempts=status.attempts, operation_id=status.operation_id,
    )


def state_to_pb(s: RecommendationState) -> int:
    return int(pb.RecommendationState.Value(f"RECOMMENDATION_STATE_{s.name}"))


def recommendation_to_pb(r: Recommendation, *, with_assessments: bool = True) -> pb.Recommendation:
    msg = recommendation_head(r)
    msg.moves.extend(moves_to_pb(r, with_assessments=with_assessments))
    return msg


def recommendation_head(r: Recommendation) -> pb.Recommendation:
    """A recommendation's message without its moves."""
    # One not stored (a dry run, a plan of no move) has no id, and so no state of its own, nor have its moves.
    msg = pb.Recommendation(
        id=r.id, goal=r.goal, state=state_to_pb(r.state) if r.id else 0,  # type: ignore[arg-type]
        create_time=timestamp(r.created_at_s),
        summary=r.summary, decided_by=r.decided_by, decision_reason=r.decision_reason,
        priority=r.priority.level, priority_reason=r.priority.reason, benefit_unit=r.benefit_unit,
        automation_level=r.automation, cluster=r.cluster, expiry_reason=r.expiry_reason,
        cancel_requested=r.cancel_requested, run_requested_by=r.run_requested_by, superseded_by=r.superseded_by,
        history=[pb.StateChange(time=timestamp(h.at_s), state=state_to_pb(h.state),  # type: ignore[arg-type]
                                actor=h.actor, reason=h.reason) for h in r.history],
    )
    if r.decided_at_s is not None:
        msg.decide_time.CopyFrom(timestamp(r.decided_at_s))
    if r.benefit is not None:
        msg.benefit = r.benefit
    if r.benefit_over_cost is not None:
        msg.benefit_over_cost = r.benefit_over_cost
    return msg


def moves_to_pb(r: Recommendation, *, with_assessments: bool, first: int = 0) -> Iterator[pb.Move]:
    """The messages of `r`'s moves from the `first`, in order."""
    for m, s in itertools.islice(zip(r.moves, r.statuses(), strict=True), first, None):
        move = move_to_pb(m, with_assessments=with_assessments, status=s)
        if not r.id:
            move.ClearField("state")
        yield move


def fitted(msg: pb.Recommendation) -> pb.Recommendation:
    """The recommendation as it fits what a standard client accepts: whole when it fits; else the moves without
    their host assessments, and only the moves that fit (ListMoves has the others; `moves_total` says how many)."""
    msg.moves_total = len(msg.moves)
    if msg.ByteSize() <= PAGE_BYTES:
        return msg
    moves = list(msg.moves)
    del msg.moves[:]
    return fill_moves(msg, moves)


def fill_moves(msg: pb.Recommendation, moves: Iterable[pb.Move]) -> pb.Recommendation:
    """`msg` (no move yet) with `moves` without their assessments, as many as fit."""
    budget = PAGE_BYTES - msg.ByteSize()
    for move in moves:
        del move.assessments[:]
        budget -= move.ByteSize() + 8
        if budget < 0:
            break
        msg.moves.append(move)
    return msg


def automation_to_pb(a: ClusterAutomation) -> pb.ClusterAutomation:
    msg = pb.ClusterAutomation(cluster=a.cluster, level=str(a.level), min_benefit_over_cost=a.min_benefit_over_cost,
                               updated_by=a.updated_by)
    if a.updated_at_s is not None:
        msg.update_time.CopyFrom(timestamp(a.updated_at_s))
    return msg


_PHASES = {
    Phase.QUEUED: pb.MIGRATION_PHASE_QUEUED,
    Phase.PRECOPY: pb.MIGRATION_PHASE_PRECOPY,
    Phase.POSTCOPY: pb.MIGRATION_PHASE_POSTCOPY,
    Phase.SUCCEEDED: pb.MIGRATION_PHASE_SUCCEEDED,
    Phase.FAILED: pb.MIGRATION_PHASE_FAILED,
    Phase.ABORTED: pb.MIGRATION_PHASE_ABORTED,
    Phase.COLD: pb.MIGRATION_PHASE_COLD,
    Phase.RESTARTING: pb.MIGRATION_PHASE_RESTARTING,
}


def operation_to_pb(r: MigrationRecord) -> pb.Operation:
    msg = pb.Operation(
        operation_id=r.operation_id, recommendation_id=r.recommendation_id, phase=_PHASES[r.phase],
        predicted_cost=_predicted(r.parameters, r.predicted), create_time=timestamp(r.created_at_s), message=r.message,
        move_index=r.move_index, vm_id=r.vm_id, attempt=r.attempt, source_host_id=r.source_host_id,
        target_host_id=r.target_host_id, parameters=parameters_to_pb(r.parameters),
    )
    if r.finished_at_s is not None:
        msg.end_time.CopyFrom(timestamp(r.finished_at_s))
    if r.outcome is not None:
        o = r.outcome
        msg.outcome.CopyFrom(pb.MigrationOutcome(  # what was not measured stays unset, never 0
            total_time_ms=o.total_time_ms, downtime_ms=o.downtime_ms, transferred_mib=o.transferred_mib,
            iterations=o.iterations, postcopy_requests=o.postcopy_requests,
            failure_class=f"FAILURE_CLASS_{o.failure.name}" if o.failure else None,
        ))
    return msg


def progress_to_pb(r: MigrationRecord, p: Progress | None, e: Estimate | None = None) -> pb.MigrationProgress:
    msg = pb.MigrationProgress(operation_id=r.operation_id, vm_id=r.vm_id, phase=_PHASES[r.phase], message=r.message)
    if e is not None:
        msg.progress_ratio = 1.0 if r.phase is Phase.SUCCEEDED else e.progress_ratio
        msg.estimate = e.reason
        if e.eta_ms is not None and not r.phase.final:
            msg.eta_ms = e.eta_ms
        if e.converging is not None:
            msg.converging = e.converging
    if p is None:
        msg.elapsed_ms = r.timeline[-1].at_ms if r.timeline else 0.0
    else:
        msg.elapsed_ms = p.elapsed_ms
        msg.memory_total_mib = p.memory_total_mib
        msg.memory_remaining_mib = p.memory_remaining_mib
        msg.dirty_rate_mib_s = p.dirty_rate_mib_s
        msg.transfer_rate_mib_s = p.transfer_rate_mib_s
        msg.iteration = p.iteration
        msg.expected_downtime_ms = p.expected_downtime_ms
        msg.autoconverge_throttle_pct = round(p.autoconverge_throttle_pct)
    return msg
