"""Advice for one VM: what moving it would cost with each technique, and where and how to move it.

Targets come from the planning engine's filters and weigher (advisor.planning.engine) on a snapshot of the
cluster, for a VM that moves as for a new one; the technique and its parameters from the pure rule
(advisor.planning.technique), costs from the estimator; the recommendation is stored proposed, with a reason for
every host not chosen, and supersedes the VM's earlier proposed one (advisor.usecases.proposals). A dry run stores
nothing and has no id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from advisor.domain import validation
from advisor.domain.assessments import HostAssessment
from advisor.domain.automation import Level, automation_actor, places_itself, rate, vm_level
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.model import MigrationCost, MigrationInputs, Move, Objective, Technique, Vm
from advisor.domain.recommendation import Recommendation
from advisor.domain.transport import transport
from advisor.features.inputs import Overrides
from advisor.metrics import AdvisorMetrics
from advisor.planning import engine
from advisor.planning.engine.results import describe_inputs
from advisor.planning.technique import TechniqueRules, choose_technique
from advisor.usecases.automation import Automation, SelfApproval
from advisor.usecases.estimates import CostEstimator, objective_overrides
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock, NewId, RecommendationStore
from advisor.usecases.priority import URGENT, Priority
from advisor.usecases.proposals import flag, open_by_vm, replaced, supersede
from advisor.usecases.snapshots import Snapshots

# Eligible hosts kept in a recommendation (the chosen one first); every host is stored apart, for paging.
KEPT_HOSTS = 4
# ... and in a placement, which stores nothing else
KEPT_PLACES = 6


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


class Advice:
    def __init__(
        self,
        inventory: Inventory,
        estimator: CostEstimator,
        store: RecommendationStore,
        metrics: AdvisorMetrics,
        *,
        clock: Clock,
        new_id: NewId,
        filters: engine.FilterPolicy,
        weights: engine.Weights,
        technique: TechniqueRules,
        automation: Automation,
        self_approval: SelfApproval,
        snapshots: Snapshots,
        priority: Priority = URGENT,
    ) -> None:
        self._inventory = inventory
        self._estimator = estimator
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._new_id = new_id
        self._filters = filters
        self._weights = weights
        self._technique = technique
        self._automation = automation
        self._self_approval = self_approval
        self._snapshots = snapshots
        self._priority = priority  # schedulers wait on placements and recommendations: bulk work gives way

    def predict_cost(self, vm_id: str, target_host_id: str = "", techniques: Sequence[Technique] = (),
                     overrides: Overrides = Overrides()) -> CostPrediction:  # noqa: B008 - frozen dataclass defaults are safe to share
        for field, value, high in (
            ("dirty_rate_mib_s", overrides.dirty_rate_mib_s, validation.MAX_DIRTY_RATE_MIB_S),
            ("bandwidth_mib_s", overrides.bandwidth_mib_s, validation.MAX_BANDWIDTH_MIB_S),
            ("max_bandwidth_mib_s", overrides.max_bandwidth_mib_s, validation.MAX_BANDWIDTH_MIB_S),
            ("max_downtime_ms", overrides.max_downtime_ms, validation.MAX_DOWNTIME_MS),
        ):
            if value is not None:
                low = {"dirty_rate_mib_s": 0.0, "max_downtime_ms": validation.MIN_DOWNTIME_MS}.get(
                    field, validation.MIN_BANDWIDTH_MIB_S)
                validation.check_number(value, field, low=low, high=high)
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
                if target.id == vm.host_id:  # no move: there is no cost of one to predict
                    raise InvalidArgument("target_host_id", f"{target.id} is the VM's current host")
            source = cluster.hosts[vm.host_id]
        # to a named target, priced as it would travel (encrypted or not)
        tls = target is not None and transport(self._filters.migration_tls, source, target).tls
        inputs = self._estimator.inputs(vm, source, target, overrides, tls=tls)
        chosen = tuple(dict.fromkeys(techniques)) or tuple(Technique)
        return CostPrediction(inputs, tuple(self._estimator.costs(inputs, chosen)))

    def place_vm(self, vm: Vm, excluded_host_ids: Sequence[str] = ()) -> Placement:
        """Choose a host for a new VM; at automation partial or full, add it to the inventory there."""
        with self._priority.urgent():
            return self._place_vm(vm, excluded_host_ids)

    def _place_vm(self, vm: Vm, excluded_host_ids: Sequence[str]) -> Placement:
        validation.check_vm(replace(vm, host_id="new"), "vm")
        for i, host_id in enumerate(excluded_host_ids):
            validation.check_id(host_id, f"excluded_host_ids[{i}]")
        with self._inventory.reading() as cluster:
            if vm.id in cluster.vms:
                raise FailedPrecondition(f"VM {vm.id!r} is already in the inventory, on {cluster.vms[vm.id].host_id}: "
                                         "RecommendTarget moves it")
            if unknown := cluster.unknown_networks(vm):
                raise InvalidArgument("vm.networks", f"unknown network {unknown[0]!r}: no host of the inventory "
                                                     "offers it")
            for i, host_id in enumerate(excluded_host_ids):  # as RecommendTarget: a typo excludes nothing
                if host_id not in cluster.hosts:
                    raise NotFound(f"excluded_host_ids[{i}]", "host", host_id)
            hosts = dict(cluster.hosts)
        snap, index = engine.with_new_vm(self._snapshots.current(), replace(vm, host_id=""))
        ranking = engine.rank_targets(snap, index, policy=self._filters, weights=self._weights,
                                      excluded=excluded_host_ids, keep=KEPT_PLACES)
        if not ranking.best or ranking.target_id not in hosts:
            raise FailedPrecondition(f"no host can take VM {vm.id!r} among {ranking.assessed} ({ranking.why_none()})")
        host = hosts[ranking.target_id]
        name = self._automation.cluster_of(host)
        own = vm_level(self._automation.of(name).level, vm.labels)
        level = Level.MANUAL if own is None else own
        reasons = (ranking.why_host(),
                   f"automation {level} in cluster {name}: " + ("placed by the advisor" if places_itself(level)
                                                                 else "a person decides (push the VM there)"))
        placed_by = ""
        if places_itself(level):
            self._inventory.apply(InventoryChange(vms=(replace(vm, host_id=host.id),)))
            placed_by = automation_actor(level, name)
        return Placement(host.id, bool(placed_by), level, name, placed_by, reasons, ranking.kept(),
                         ranking.rejection_counts())

    def recommend_target(
        self, vm_id: str, objective: Objective, excluded_host_ids: Sequence[str] = (), *, dry_run: bool = False
    ) -> Recommendation:
        """Where and how to move a VM, stored proposed (superseding the VM's earlier proposed one); a dry run
        stores nothing, supersedes nothing and has no id."""
        with self._priority.urgent():
            return self._recommend_target(vm_id, objective, excluded_host_ids, dry_run=dry_run)

    def _recommend_target(
        self, vm_id: str, objective: Objective, excluded_host_ids: Sequence[str], *, dry_run: bool
    ) -> Recommendation:
        validation.check_objective(objective)
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
        if refused := self._technique.cold_refused(vm.labels):  # as a plan leaves it out (the engine's `select`)
            raise FailedPrecondition(f"VM {vm_id!r} cannot move: {refused}")
        snap, index = self._snapshot_with(vm)
        ranking = engine.rank_targets(snap, index, policy=self._filters, weights=self._weights,
                                      excluded=excluded_host_ids, keep=KEPT_HOSTS)
        if not ranking.best or ranking.target_id not in hosts:
            raise FailedPrecondition(f"no eligible target for VM {vm_id!r} among {ranking.assessed} hosts "
                                     f"({ranking.why_none()})")
        source, target = hosts[vm.host_id], hosts[ranking.target_id]
        carried = transport(self._filters.migration_tls, source, target)
        # the objective's limits are the ones enforced, and the ones the inputs show (as a plan's move's)
        inputs = self._estimator.inputs(vm, source, target, objective_overrides(objective), tls=carried.tls)
        level, cluster_name = self._automation.level([vm], {source.id: source})
        choice = choose_technique(self._estimator.costs(inputs), objective,
                                  bandwidth_mib_s=inputs.usable_bandwidth_mib_s, postcopy_allowed=vm.postcopy_allowed,
                                  rules=self._technique,
                                  dirty_rate_mib_s=inputs.dirty_rate_mib_s if inputs.dirty_rate_known else None,
                                  postcopy_forbidden=self._technique.postcopy_forbidden(vm.labels, cluster_name),
                                  cold_asked=self._technique.cold_asked(vm.labels))
        reasons = (ranking.why_target(), describe_inputs(inputs), *choice.reasons, carried.reason,
                   *ranking.why_rejected())
        goal, now = f"target:{vm.id}", self._clock()
        move = Move(vm.id, vm.host_id, target.id,
                    replace(choice.parameters, tls=carried.tls, migrate_disks=tuple(d.target for d in vm.local_disks)),
                    choice.cost, reasons,
                    ranking.kept(),
                    ranking.rejection_counts(), ranking.assessed, inputs)
        others = open_by_vm(self._store, (move,))
        earlier = [] if dry_run else replaced(goal, others.get(vm.id, ()))
        rec = Recommendation(
            id="" if dry_run else self._new_id(), goal=goal, created_at_s=now,
            moves=flag((move,), others, earlier), summary=choice.summary(vm.id, vm.host_id, target.id),
            priority=rate(f"its host {source.id} is in maintenance" if source.in_maintenance else "", None),
            automation=str(level), cluster=cluster_name,
        )
        if dry_run:
            return rec
        self._store.add_recommendation(rec, {0: engine.all_assessments(snap, ranking)})
        supersede(self._store, rec, earlier, now)
        self._metrics.recommendations.labels("target").inc()
        return self._self_approval(rec)

    def _snapshot_with(self, vm: Vm) -> tuple[engine.ClusterArrays, int]:
        """The cached cluster snapshot and the VM's index in it; one of the inventory now when the cached one does
        not know the VM where the inventory has it (it was just pushed or moved)."""
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
                snap = self._snapshots.current()
        raise FailedPrecondition(f"VM {vm.id!r} changed while it was being assessed; try again")
