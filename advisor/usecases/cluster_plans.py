"""Cluster plans: drain a host, rebalance, consolidate, by the planning engine (advisor.planning.engine) on a
snapshot of the cluster (advisor.usecases.snapshots), so planning never blocks ingestion.

Each move comes with its target, technique, predicted cost, its order under the concurrency limits and its
explanation. The engine ranks candidates with the served model over the snapshot's arrays (each VM at its host's
`advisor.profile`), and prices the moves it chooses as advice does (advisor.usecases.plan_costs): each move is
stored with the inputs advice would build for the same VM, source and target, and the served model's prediction
from them. The recommendation comes with a priority, its gain over its cost, and the automation level it runs at.
Moves whose gain over cost is below the cluster's threshold are not proposed: the plan is made again without them
(at most THRESHOLD_ROUNDS times), so every move left still fits the cluster as the others leave it.

A plan says which of its VMs other open recommendations already move (advisor.usecases.proposals). A plan with no
move says why in its summary and is stored only when asked (`store_empty`): a scheduler asking again and again
leaves nothing to review.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from advisor.domain import validation
from advisor.domain.automation import rate
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Move, Objective, PlanGoal
from advisor.domain.recommendation import Recommendation
from advisor.features.inputs import PROFILE_LABEL
from advisor.metrics import AdvisorMetrics
from advisor.ml.move_costs import LearnedMoveCosts
from advisor.planning import engine
from advisor.planning.engine.halves import HalvedMoveCosts
from advisor.planning.engine.results import describe_inputs
from advisor.planning.technique import TechniqueRules
from advisor.planning.value import benefit_over_cost, why_worth
from advisor.usecases.automation import Automation, SelfApproval
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.evacuation import HostWatch
from advisor.usecases.inventory import Inventory
from advisor.usecases.plan_costs import AdviceMoveCosts
from advisor.usecases.ports import Clock, NewId, RecommendationStore
from advisor.usecases.proposals import flag, open_by_vm, overlap_summary
from advisor.usecases.snapshots import Snapshots


class PlanStore(RecommendationStore, Protocol):
    def recent_migrations(self, since_s: float, limit: int) -> list[MigrationRecord]: ...


# The engine's strategy for each goal.
STRATEGIES: Mapping[PlanGoal, str] = {PlanGoal.DRAIN: "drain", PlanGoal.REBALANCE: "balance",
                                      PlanGoal.CONSOLIDATE: "consolidate", PlanGoal.EVACUATE: "evacuate"}
THRESHOLD_ROUNDS = 3
HISTORY_S = 86_400.0  # moves remembered for cooldowns and no-return
HISTORY_LIMIT = 5_000


class Planning:
    def __init__(self, inventory: Inventory, snapshots: Snapshots, estimator: CostEstimator,
                 store: PlanStore, metrics: AdvisorMetrics, *, clock: Clock, new_id: NewId,
                 technique: TechniqueRules, plans: engine.PlanSettings, automation: Automation,
                 self_approval: SelfApproval, watch: HostWatch | None = None) -> None:
        self._inventory = inventory
        self._snapshots = snapshots
        self._estimator = estimator
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._new_id = new_id
        self._technique = technique
        self._plans = plans
        self._automation = automation
        self._self_approval = self_approval
        self._watch = watch  # how an evacuation tells a host is down (None: evacuations refused)

    def _settings(self, objective: Objective, max_moves: int) -> engine.PlanSettings:
        """The plan settings with this request's limits."""
        return dataclasses.replace(self._plans, churn=dataclasses.replace(self._plans.churn, max_moves=max_moves),
                                   max_downtime_ms=objective.max_downtime_ms,
                                   deadline_ms=objective.deadline_ms)

    def _costs(self, cluster: engine.ClusterArrays, objective: Objective) -> tuple[HalvedMoveCosts, AdviceMoveCosts]:
        """What ranks the candidates (each VM at its host's profile, a large batch in two halves at once) and what
        prices the moves chosen."""
        hosts = self._inventory.hosts()
        by_host = [hosts[h].labels.get(PROFILE_LABEL, "") if h in hosts else "" for h in cluster.host_ids]
        profiles = [by_host[h] if h >= 0 else "" for h in cluster.loads.vm_host.tolist()]
        return (HalvedMoveCosts(LearnedMoveCosts(self._estimator.predictor, self._technique, profiles)),
                AdviceMoveCosts(self._estimator, cluster, self._inventory.vms(), hosts, objective, self._technique,
                                self._plans.filters.migration_tls))

    def _history(self) -> engine.MoveHistory:
        since = self._clock() - HISTORY_S
        recent = self._store.recent_migrations(since, HISTORY_LIMIT)
        history = engine.MoveHistory()
        for r in sorted(recent, key=lambda r: r.created_at_s):
            history = history.record([(r.vm_id, r.source_host_id, r.target_host_id,
                                       r.predicted.total_time_ms.median / 1000)], r.created_at_s)
        return history

    def plan_cluster(self, goal: PlanGoal, host_id: str, max_moves: int, objective: Objective, *,
                     dry_run: bool = False, store_empty: bool = False, force: bool = False) -> Recommendation:
        """A plan for the whole cluster (a drain empties `host_id`, an evacuation restarts the VMs of `host_id`,
        down, elsewhere: refused for a host up unless `force`); a dry run stores nothing and has no id, nor
        does a plan with no move unless `store_empty`."""
        if goal not in STRATEGIES:
            raise InvalidArgument("goal", f"must be one of {', '.join(STRATEGIES)} (got {goal!r})")
        goal = PlanGoal(goal)
        validation.check_number(max_moves, "max_moves", low=0, high=10_000)
        validation.check_objective(objective)
        drain = goal.names_host  # a drain or an evacuation: required, never held back by a threshold
        if drain:
            validation.check_id(host_id, "host_id")
        elif host_id:
            raise InvalidArgument("host_id", f"only a drain or an evacuation names a host (goal is {goal})")
        if force and goal is not PlanGoal.EVACUATE:
            raise InvalidArgument("force", f"only an evacuation is forced (goal is {goal})")
        cluster = self._snapshots.fresh(self._plans.rebalance_forecast if goal is PlanGoal.REBALANCE else None)
        if drain and host_id not in cluster.host_ids:
            raise NotFound("host_id", "host", host_id)
        strategy = STRATEGIES[goal]
        params: dict[str, object] = {"host": host_id} if drain else {}
        why_down = ""
        if goal is PlanGoal.EVACUATE:
            if self._watch is None:
                raise FailedPrecondition("evacuation is not enabled on this advisor")
            why_down = self._watch.check_down(host_id, force)
            params = self._watch.parameters(host_id, self._inventory.vms(), cluster.host_ids)
        settings, history = self._settings(objective, max_moves), self._history()
        costs, pricing = self._costs(cluster, objective)  # the pricing's indexes hold: pinning keeps them
        # Each move is held to the threshold of its source host's cluster (a drain is never held back).
        hosts = self._inventory.hosts()
        names = {h: self._automation.cluster_of(hosts[h]) if h in hosts else "" for h in cluster.host_ids}
        of = self._automation.of_each(set(names.values()))
        thresholds = {h: 0.0 if drain else of[name].min_benefit_over_cost for h, name in names.items()}
        below: list[str] = []
        for _ in range(THRESHOLD_ROUNDS):
            plan = engine.plan(strategy, cluster, costs, settings=settings, history=history, now_s=self._clock(),
                               pricing=pricing, max_moves=max_moves, **params)
            weak = [m for m in plan.moves if (r := benefit_over_cost(strategy, m, cluster)) is not None
                    and r < thresholds.get(m.source_id, 0.0)]
            if not weak:
                break
            below += [m.vm_id for m in weak]
            cluster = engine.with_pinned(cluster, [m.vm for m in weak])
        else:  # the last round's weak moves were taken out: plan once more without them, so that the waves,
            # times and hosts to switch off are those of the moves proposed (a move still weak then is dropped)
            plan = engine.plan(strategy, cluster, costs, settings=settings, history=history, now_s=self._clock(),
                               pricing=pricing, max_moves=max_moves, **params)
            still = {m.vm_id for m in plan.moves if (r := benefit_over_cost(strategy, m, cluster)) is not None
                     and r < thresholds.get(m.source_id, 0.0)}
            below += sorted(still)
            plan = dataclasses.replace(plan, moves=tuple(m for m in plan.moves if m.vm_id not in still))
        used = sorted({thresholds.get(h, 0.0) for h in cluster.host_ids})
        if why_down:
            plan = dataclasses.replace(plan, summary=f"{why_down} {plan.summary}")
        return self._recommend(goal, host_id, plan, cluster, pricing, strategy, used, below,
                               dry_run or not (plan.moves or store_empty))

    def _recommend(self, goal: PlanGoal, host_id: str, plan: engine.Plan, cluster: engine.ClusterArrays,
                   pricing: AdviceMoveCosts, strategy: str, thresholds: list[float], below: list[str],
                   unstored: bool) -> Recommendation:
        moves: list[Move] = []
        ratios = []
        vms = self._inventory.vms()
        for k, m in enumerate(plan.moves, 1):
            ratio = benefit_over_cost(strategy, m, cluster)
            ratios.append(ratio)
            if goal is PlanGoal.EVACUATE:  # a restart, not a migration: its cost is its steps (the engine's)
                moves.append(m.to_move(f"restart {k} of {len(plan.moves)}, in priority order", m.when()))
                continue
            # stored with the inputs and the very prediction it was priced and scheduled with
            inputs, cost = pricing.priced(m.vm, m.target, m.priced_mib_s, m.parameters.technique)
            carried = pricing.transport(m.source_id, m.target_id)
            local = tuple(d.target for d in vms[m.vm_id].local_disks) if m.vm_id in vms else ()
            moves.append(m.to_move(describe_inputs(inputs), why_worth(strategy, m, plan.benefit_unit, ratio), m.when(),
                                   carried.reason, inputs=inputs, cost=cost, parameters=dataclasses.replace(
                                       m.parameters, tls=carried.tls, migrate_disks=local)))
        level, cluster_name = self._automation.level([vms[m.vm_id] for m in moves if m.vm_id in vms],
                                                     self._inventory.hosts())
        measured = [(r, m.predicted_cost.total_time_ms.median) for r, m in zip(ratios, moves, strict=True)
                    if r is not None]
        mandatory = {PlanGoal.DRAIN: f"drain of {host_id} asked for",
                     PlanGoal.EVACUATE: f"{host_id} is down: its VMs to restart"}.get(goal, "")
        benefit = float(sum(m.benefit for m in plan.moves)) if measured else None
        # the moves' ratios weighted by their predicted time
        ratio = sum(r * t for r, t in measured) / sum(t for _, t in measured) if measured else None
        others = open_by_vm(self._store, moves)
        rec = Recommendation(
            id="" if unstored else self._new_id(), goal=goal.label(host_id), created_at_s=self._clock(),
            moves=flag(moves, others), summary=plan.review_summary(below, thresholds) + overlap_summary(moves, others),
            priority=rate(mandatory, ratio), benefit=benefit, benefit_unit=plan.benefit_unit if measured else "",
            benefit_over_cost=ratio, automation=str(level), cluster=cluster_name)
        if unstored:
            return rec
        self._store.add_recommendation(rec, {i: m.assessments for i, m in enumerate(moves)})
        self._metrics.recommendations.labels(str(goal)).inc()
        return self._self_approval(rec)
