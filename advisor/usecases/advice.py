"""Advice for one VM: what moving it would cost with each technique, and where and how to move it.

Targets come from the pure placement filters and weigher (advisor.planning.placement), the technique and its
parameters from the pure policy (advisor.planning.technique), costs from the estimator; the recommendation is
stored proposed, with a reason for every host not chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from advisor.domain import validation
from advisor.domain.automation import Level, automation_actor, places_itself, rate, vm_level
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.model import HostAssessment, MigrationCost, MigrationInputs, Move, Objective, Technique, Vm
from advisor.domain.recommendation import Recommendation
from advisor.features.inputs import Overrides
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.planning import engine
from advisor.planning.placement import HostLoad, PlacementPolicy, VmDemand, rank_targets, summarize
from advisor.planning.technique import TechniquePolicy, choose_technique
from advisor.usecases.automation import Automation
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock, NewId, RecommendationStore
from advisor.usecases.snapshots import Snapshots

# Eligible hosts kept in a recommendation (the chosen one first); every host is stored apart, for paging.
KEPT_HOSTS = 4


@dataclass(frozen=True)
class CostPrediction:
    inputs: MigrationInputs
    costs: tuple[MigrationCost, ...]


@dataclass(frozen=True)
class Placement:
    """Where a new VM goes, and whether the advisor put it there by itself (automation partial or full)."""

    host_id: str
    placed: bool
    level: Level
    cluster: str
    placed_by: str
    reasons: tuple[str, ...]
    kept: tuple[HostAssessment, ...]
    rejection_counts: tuple[tuple[str, int, str], ...]


def check_objective(objective: Objective) -> None:
    validation.check_number(objective.max_downtime_ms, "objective.max_downtime_ms", low=0, high=3_600_000)
    validation.check_number(objective.deadline_ms, "objective.deadline_ms", low=0, high=86_400_000)


def describe_inputs(inputs: MigrationInputs) -> str:
    """What the prediction was made from, with what was assumed."""
    if inputs.memory_source == "configured" or inputs.memory_configured_mib is None:
        memory = f"{inputs.memory_mib:.0f} MiB to copy (memory in use unknown: all of it)"
    else:
        memory = (f"{inputs.memory_mib:.0f} MiB in use of {inputs.memory_configured_mib:.0f} MiB "
                  f"({inputs.memory_source})")
    working_set = (f", working set {inputs.working_set_mib:.0f} MiB" if inputs.working_set_mib is not None
                   else ", working set not measured")
    deadline = f", deadline {inputs.deadline_ms / 1000:.0f} s" if inputs.deadline_ms else ""
    profile = f", hosts of profile {inputs.host_profile}" if inputs.host_profile else ""
    return (f"inputs: {memory}, dirty rate {inputs.dirty_rate_mib_s:.1f} MiB/s ({inputs.dirty_rate_source})"
            f"{working_set}, {inputs.usable_bandwidth_mib_s:.1f} MiB/s, allowed downtime "
            f"{inputs.max_downtime_ms:.0f} ms{deadline}{profile}")


class Advice:
    def __init__(
        self,
        inventory: Inventory,
        samples: RecentSamples,
        estimator: CostEstimator,
        store: RecommendationStore,
        metrics: AdvisorMetrics,
        *,
        clock: Clock,
        new_id: NewId,
        placement: PlacementPolicy,
        technique: TechniquePolicy,
        automation: Automation,
        snapshots: Snapshots,
    ) -> None:
        self._inventory = inventory
        self._samples = samples
        self._estimator = estimator
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._new_id = new_id
        self._placement = placement
        self._technique = technique
        self._automation = automation
        self._snapshots = snapshots

    def predict_cost(self, vm_id: str, target_host_id: str = "", techniques: Sequence[Technique] = (),
                     overrides: Overrides = Overrides()) -> CostPrediction:  # noqa: B008 - frozen dataclass defaults are safe to share
        for field, value, high in (
            ("dirty_rate_mib_s", overrides.dirty_rate_mib_s, validation.MAX_DIRTY_RATE_MIB_S),
            ("bandwidth_mib_s", overrides.bandwidth_mib_s, validation.MAX_BANDWIDTH_MIB_S),
            ("max_bandwidth_mib_s", overrides.max_bandwidth_mib_s, validation.MAX_BANDWIDTH_MIB_S),
            ("max_downtime_ms", overrides.max_downtime_ms, 3_600_000.0),
        ):
            if value is not None:
                low = 0.0 if field in ("dirty_rate_mib_s", "max_downtime_ms") else validation.MIN_BANDWIDTH_MIB_S
                validation.check_number(value, field, low=low, high=high, low_inclusive=field != "max_downtime_ms")
        validation.check_id(vm_id, "vm_id")
        if target_host_id:
            validation.check_id(target_host_id, "target_host_id")
        with self._inventory.reading() as cluster:
            vm = cluster.vms.get(vm_id)
            if vm is None:
                raise NotFound("vm_id", "VM", vm_id)
            target = None
            if target_host_id:
                target = cluster.hosts.get(target_host_id)
                if target is None:
                    raise NotFound("target_host_id", "host", target_host_id)
            source = cluster.hosts[vm.host_id]
        inputs = self._estimator.inputs(vm, source, target, overrides)
        chosen = tuple(dict.fromkeys(techniques)) or tuple(Technique)
        return CostPrediction(inputs, tuple(self._estimator.costs(inputs, chosen)))

    def place_vm(self, vm: Vm, excluded_host_ids: Sequence[str] = ()) -> Placement:
        """Choose a host for a new VM; at automation partial or full, add it to the inventory there."""
        validation.check_vm(replace(vm, host_id="new"), "vm")
        for i, host_id in enumerate(excluded_host_ids):
            validation.check_id(host_id, f"excluded_host_ids[{i}]")
        with self._inventory.reading() as cluster:
            if vm.id in cluster.vms:
                raise FailedPrecondition(f"VM {vm.id!r} is already in the inventory, on {cluster.vms[vm.id].host_id}: "
                                         "RecommendTarget moves it")
            loads = []
            for host in cluster.hosts.values():
                memory, vcpus = cluster.allocated(host.id)
                host_cpu = self._samples.host_latest(host.id, "cpu_utilization")
                loads.append(HostLoad(host, memory, vcpus, None if host_cpu is None else host_cpu.value))
            new = replace(vm, host_id="")
            assessments = rank_targets(VmDemand(new, None), loads, conflicts=cluster.anti_affinity_conflicts(new),
                                       partners=cluster.affinity_partners(new),
                                       excluded=frozenset(excluded_host_ids), policy=self._placement)
            eligible = [a for a in assessments if a.eligible]
            if not eligible:
                examples = "; ".join(f"{a.host_id}: {', '.join(a.rejections)}" for a in assessments[:5])
                raise FailedPrecondition(f"no host can take VM {vm.id!r} among {len(assessments)} ({examples})")
            best = eligible[0]
            host = cluster.hosts[best.host_id]
        name = self._automation.cluster_of(host)
        own = vm_level(self._automation.of(name).level, vm.labels)
        level = Level.MANUAL if own is None else own
        reasons = (f"host {best.host_id}: lowest resulting load of {len(eligible)} eligible host(s) (CPU "
                   f"{best.cpu_after:.0%}, memory {best.memory_after:.0%} after); "
                   f"{len(assessments) - len(eligible)} rejected",
                   f"automation {level} in cluster {name}: " + ("placed by the advisor" if places_itself(level)
                                                                 else "a person decides (push the VM there)"))
        placed_by = ""
        if places_itself(level):
            self._inventory.apply(InventoryChange(vms=(replace(vm, host_id=best.host_id),)))
            placed_by = automation_actor(level, name)
        kept = summarize(assessments, best.host_id)
        return Placement(best.host_id, bool(placed_by), level, name, placed_by, reasons, kept.kept,
                         kept.rejection_counts)

    def recommend_target(
        self, vm_id: str, objective: Objective, excluded_host_ids: Sequence[str] = ()
    ) -> Recommendation:
        check_objective(objective)
        validation.check_id(vm_id, "vm_id")
        for i, host_id in enumerate(excluded_host_ids):
            validation.check_id(host_id, f"excluded_host_ids[{i}]")
        with self._inventory.reading() as cluster:
            vm = cluster.vms.get(vm_id)
            if vm is None:
                raise NotFound("vm_id", "VM", vm_id)
            for i, host_id in enumerate(excluded_host_ids):
                if host_id not in cluster.hosts:
                    raise NotFound(f"excluded_host_ids[{i}]", "host", host_id)
            hosts = dict(cluster.hosts)
        snap, index = self._snapshot_with(vm)
        excluded = np.isin(np.array(snap.host_ids), list(excluded_host_ids)) if excluded_host_ids else None
        p = self._placement
        policy = engine.FilterPolicy(p.cpu_allocation_ratio, p.memory_allocation_ratio, p.max_cpu_after)
        ranking = engine.rank_targets(snap, index, policy=policy, excluded=excluded, keep=KEPT_HOSTS)
        assessed = int(ranking.assessment.hosts.shape[0])
        if not ranking.best or ranking.best[0].host_id not in hosts:
            counts = "; ".join(f"{f}: {n} (e.g. {h}: {r})" for f, n, h, r in ranking.rejections)
            raise FailedPrecondition(f"no eligible target for VM {vm_id!r} among {assessed} hosts ({counts})")
        best = ranking.best[0]
        source, target = hosts[vm.host_id], hosts[best.host_id]
        limit = Overrides(max_downtime_ms=objective.max_downtime_ms or None)
        inputs = self._estimator.inputs(vm, source, target, limit)
        choice = choose_technique(self._estimator.costs(inputs), objective,
                                  bandwidth_mib_s=inputs.usable_bandwidth_mib_s, postcopy_allowed=vm.postcopy_allowed,
                                  policy=self._technique)
        eligible = len(ranking.scores)
        runner = (f"; next {ranking.best[1].host_id} (score {ranking.best[1].score:.3f})" if len(ranking.best) > 1
                  else "")
        reasons = (
            f"target {best.host_id}: the best score {best.score:.3f} of {eligible} eligible host(s) ({best.detail}; "
            f"CPU {best.cpu_after:.0%}, memory {best.memory_after:.0%} after the move){runner}; "
            f"{assessed - eligible} rejected",
            describe_inputs(inputs),
            *choice.reasons,
        )
        cost = choice.cost
        summary = (
            f"Move {vm.id} from {vm.host_id} to {best.host_id} by {cost.technique}: about "
            f"{cost.total_time_ms.median / 1000:.1f} s, {cost.downtime_ms.median:.0f} ms downtime, "
            f"{cost.transferred_mib.median:.0f} MiB ({cost.model.name} {cost.model.version})."
        )
        kept = tuple(HostAssessment(h.host_id, (), h.score, h.cpu_after, h.memory_after) for h in ranking.best)
        rejection_counts = tuple((f, n, h) for f, n, h, _ in ranking.rejections)
        level, cluster_name = self._automation.level([vm], {source.id: source})
        rec = Recommendation(
            id=self._new_id(), goal=f"target:{vm.id}", created_at_s=self._clock(),
            moves=(Move(vm.id, vm.host_id, best.host_id, choice.parameters, cost,
                        (*reasons, *(f"rejected by {f}: {n} host(s), e.g. {h}: {r}" for f, n, h, r in
                                     ranking.rejections)), kept, rejection_counts, assessed, inputs),),
            summary=summary,
            priority=rate(f"its host {source.id} is in maintenance" if source.in_maintenance else "", None),
            automation=str(level), cluster=cluster_name,
        )
        self._store.add_recommendation(rec, {0: engine.all_assessments(snap, ranking)})
        self._metrics.recommendations.labels("target").inc()
        return self._automation.apply(rec)

    def _snapshot_with(self, vm: Vm) -> tuple[engine.ClusterArrays, int]:
        """The cached cluster snapshot and the VM's index in it; a fresh one when the cached one does not know
        the VM where the inventory has it now (it was just pushed or moved)."""
        snap = self._snapshots.get()
        for attempt in range(2):
            try:
                index = snap.vm_index(vm.id)
                where = int(snap.vm_host[index])  # -1: unplaced in the snapshot, never its host
                if where >= 0 and snap.host_ids[where] == vm.host_id:
                    return snap, index
            except (KeyError, IndexError):
                pass
            if attempt == 0:
                snap = self._snapshots.fresh()
        raise FailedPrecondition(f"VM {vm.id!r} changed while it was being assessed; try again")
