"""Cluster plans: drain a host, rebalance, consolidate. The plan is chosen by the pure strategies of
advisor.planning.plans on a snapshot of the cluster taken under the inventory's lock and planned outside it, so
planning never blocks ingestion; each move then gets its technique, predicted cost and reasons."""

from __future__ import annotations

from advisor.domain import validation
from advisor.domain.automation import rate
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Move, Objective, Technique, Vm
from advisor.domain.recommendation import Recommendation
from advisor.features.inputs import Overrides
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.planning.placement import PlacementPolicy, summarize
from advisor.planning.plans import ClusterSnapshot, PlanPolicy, plan_consolidate, plan_drain, plan_rebalance
from advisor.planning.technique import TechniquePolicy, choose_technique
from advisor.usecases.advice import check_objective
from advisor.usecases.automation import Automation
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock, NewId, RecommendationStore

GOALS = ("drain", "rebalance", "consolidate")


class Planning:
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
        plans: PlanPolicy,
        automation: Automation,
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
        self._plans = plans
        self._automation = automation

    def snapshot(self) -> ClusterSnapshot:
        with self._inventory.reading() as cluster:
            hosts, vms = dict(cluster.hosts), dict(cluster.vms)
        return ClusterSnapshot(
            hosts=hosts, vms=vms,
            host_cpu={h: s.value for h in hosts if (s := self._samples.host_latest(h, "cpu_utilization")) is not None},
            vm_cpu={v: s.value for v in vms if (s := self._samples.vm_latest(v, "cpu_utilization")) is not None},
        )

    def plan_cluster(self, goal: str, host_id: str, max_moves: int, objective: Objective, *,
                     dry_run: bool = False) -> Recommendation:
        """A plan for the whole cluster, each move with its target, technique, predicted cost and reasons. Moves
        are chosen on a simulated copy of the cluster. A dry run stores nothing and has no id."""
        if goal not in GOALS:
            raise InvalidArgument("goal", f"must be one of {', '.join(GOALS)} (got {goal!r})")
        validation.check_number(max_moves, "max_moves", low=0, high=10_000)
        check_objective(objective)
        if goal == "drain":
            validation.check_id(host_id, "host_id")
        elif host_id:
            raise InvalidArgument("host_id", f"only a drain names a host (goal is {goal})")
        snap = self.snapshot()
        if goal == "drain" and host_id not in snap.hosts:
            raise NotFound("host_id", "host", host_id)
        move_costs: dict[str, float] = {}

        def move_cost(vm: Vm) -> float:
            """Median predicted pre-copy time of moving the VM over its own host's link."""
            if vm.id not in move_costs:
                inputs = self._estimator.inputs(vm, snap.hosts[vm.host_id], None)
                move_costs[vm.id] = self._estimator.predictor.predict(inputs, Technique.PRECOPY).total_time_ms.median
            return move_costs[vm.id]

        policy = self._placement
        if goal == "drain":
            plan = plan_drain(snap, host_id, move_cost, policy=policy, max_moves=max_moves)
        else:
            pinned = frozenset(self._store.moved_since(self._clock() - self._plans.pin_s)) | frozenset(
                vm.id for vm in snap.vms.values() if self._automation.excluded(vm, snap.hosts[vm.host_id]))
            if goal == "rebalance":
                plan = plan_rebalance(snap, move_cost, policy=policy, max_moves=max_moves, pinned=pinned,
                                      tolerance=self._plans.rebalance_tolerance)
            else:
                plan = plan_consolidate(snap, move_cost, policy=policy, max_moves=max_moves, pinned=pinned)
        moves = []
        limit = Overrides(max_downtime_ms=objective.max_downtime_ms or None)
        for planned in plan.moves:
            vm = snap.vms[planned.vm_id]
            inputs = self._estimator.inputs(vm, snap.hosts[planned.source_host_id], snap.hosts[planned.target_host_id],
                                            limit)
            choice = choose_technique(self._estimator.costs(inputs), objective,
                                      bandwidth_mib_s=inputs.usable_bandwidth_mib_s,
                                      postcopy_allowed=vm.postcopy_allowed, policy=self._technique)
            reasons = (planned.why, f"inputs: {inputs.memory_mib:.0f} MiB, {inputs.dirty_rate_source}",
                       *choice.reasons)
            kept = summarize(planned.assessments, planned.target_host_id)
            moves.append(Move(vm.id, planned.source_host_id, planned.target_host_id, choice.parameters,
                              choice.cost, reasons, kept.kept, kept.rejection_counts, kept.hosts_assessed, inputs))
        total_s = sum(m.predicted_cost.total_time_ms.median for m in moves) / 1000
        summary = plan.summary + (f" Predicted migration time in all: {total_s:.0f} s." if moves else "")
        if plan.unplaced:
            summary += " Not placed: " + "; ".join(f"{vm_id} ({why})" for vm_id, why in plan.unplaced)
        level, cluster_name = self._automation.level([snap.vms[m.vm_id] for m in moves], snap.hosts)
        mandatory = f"drain of {host_id} asked for" if goal == "drain" else ""
        rec = Recommendation(id="" if dry_run else self._new_id(), goal=plan.goal, created_at_s=self._clock(),
                             moves=tuple(moves), summary=summary, priority=rate(mandatory, None), automation=str(level),
                             cluster=cluster_name)
        if dry_run:
            return rec
        self._store.add_recommendation(rec, {i: m.assessments for i, m in enumerate(plan.moves)})
        self._metrics.recommendations.labels(goal).inc()
        return self._automation.apply(rec)
