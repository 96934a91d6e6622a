"""Cluster plans: drain a host, rebalance, consolidate, by the planning engine (advisor.planning.engine) on a
snapshot of the cluster (advisor.usecases.snapshots), so planning never blocks ingestion.

Each move comes with its target, technique, predicted cost (the learned model through the engine's MoveCosts),
its order under the concurrency limits and its explanation; the recommendation with a priority, its gain over its
cost, and the automation level it runs at. Moves whose gain over cost is below the cluster's threshold are not
proposed: the plan is made again without them (at most THRESHOLD_ROUNDS times), so every move left still fits
the cluster as the others leave it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Protocol

import numpy as np

from advisor.domain import validation
from advisor.domain.automation import rate
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import MigrationInputs, Objective
from advisor.domain.recommendation import Recommendation
from advisor.features.inputs import PROFILE_LABEL
from advisor.metrics import AdvisorMetrics
from advisor.ml.move_costs import LearnedMoveCosts
from advisor.planning import engine
from advisor.planning.placement import PlacementPolicy
from advisor.planning.plans import PlanPolicy
from advisor.planning.technique import TechniquePolicy
from advisor.planning.value import benefit_over_cost, describe
from advisor.usecases.advice import check_objective
from advisor.usecases.automation import Automation
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock, NewId, RecommendationStore
from advisor.usecases.snapshots import Snapshots


class PlanStore(RecommendationStore, Protocol):
    def recent_migrations(self, since_s: float, limit: int) -> list[MigrationRecord]: ...


GOALS = {"drain": "drain", "rebalance": "balance", "consolidate": "consolidate"}
THRESHOLD_ROUNDS = 3
HISTORY_S = 86_400.0  # moves remembered for cooldowns and no-return
HISTORY_LIMIT = 5_000


class Planning:
    def __init__(self, inventory: Inventory, snapshots: Snapshots, estimator: CostEstimator,
                 store: PlanStore, metrics: AdvisorMetrics, *, clock: Clock, new_id: NewId,
                 placement: PlacementPolicy, technique: TechniquePolicy, plans: PlanPolicy, automation: Automation,
                 concurrency: engine.Concurrency = engine.Concurrency()) -> None:  # noqa: B008 - frozen dataclass defaults are safe to share
        self._inventory = inventory
        self._snapshots = snapshots
        self._estimator = estimator
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._new_id = new_id
        self._placement = placement
        self._technique = technique
        self._plans = plans
        self._automation = automation
        self._concurrency = concurrency

    def _settings(self, objective: Objective, max_moves: int) -> engine.PlanSettings:
        p = self._placement
        return engine.PlanSettings(
            filters=engine.FilterPolicy(p.cpu_allocation_ratio, p.memory_allocation_ratio, p.max_cpu_after),
            churn=engine.AntiChurn(cooldown_s=self._plans.pin_s, max_moves=max_moves),
            concurrency=self._concurrency, max_downtime_ms=objective.max_downtime_ms or 300.0,
            deadline_ms=objective.deadline_ms)

    def _costs(self, cluster: engine.ClusterArrays) -> LearnedMoveCosts:
        t = self._technique
        rules = engine.TechniqueRules(t.risk, t.deadline_slack, t.deadline_floor_ms, t.postcopy_safety_factor,
                                      fallback=t.fallback)
        hosts = self._inventory.hosts()
        profiles = Counter(hosts[h].labels.get(PROFILE_LABEL, "") for h in cluster.host_ids if h in hosts)
        return LearnedMoveCosts(self._estimator.predictor, rules, profiles.most_common(1)[0][0] if profiles else "")

    def _history(self) -> engine.MoveHistory:
        since = self._clock() - HISTORY_S
        recent = self._store.recent_migrations(since, HISTORY_LIMIT)
        history = engine.MoveHistory()
        for r in sorted(recent, key=lambda r: r.created_at_s):
            history = history.record([(r.vm_id, r.source_host_id, r.target_host_id,
                                       r.predicted.total_time_ms.median / 1000)], r.created_at_s)
        return history

    def plan_cluster(self, goal: str, host_id: str, max_moves: int, objective: Objective, *,
                     dry_run: bool = False) -> Recommendation:
        """A plan for the whole cluster; a dry run stores nothing and has no id."""
        if goal not in GOALS:
            raise InvalidArgument("goal", f"must be one of {', '.join(GOALS)} (got {goal!r})")
        validation.check_number(max_moves, "max_moves", low=0, high=10_000)
        check_objective(objective)
        if goal == "drain":
            validation.check_id(host_id, "host_id")
        elif host_id:
            raise InvalidArgument("host_id", f"only a drain names a host (goal is {goal})")
        cluster = self._snapshots.fresh()
        if goal == "drain" and host_id not in cluster.host_ids:
            raise NotFound("host_id", "host", host_id)
        strategy = GOALS[goal]
        params: dict[str, object] = {"host": host_id} if goal == "drain" else {}
        if strategy == "balance":
            params["tolerance"] = self._plans.rebalance_tolerance
        settings, costs, history = self._settings(objective, max_moves), self._costs(cluster), self._history()
        # Each move is held to the threshold of its source host's cluster (a drain is never held back).
        hosts = self._inventory.hosts()
        thresholds: dict[str, float] = {}
        for host_id_ in cluster.host_ids:
            name = self._automation.cluster_of(hosts[host_id_]) if host_id_ in hosts else ""
            thresholds[host_id_] = self._automation.of(name).min_benefit_over_cost if strategy != "drain" else 0.0
        below: list[str] = []
        for _ in range(THRESHOLD_ROUNDS):
            plan = engine.plan(strategy, cluster, costs, settings=settings, history=history, now_s=self._clock(),
                               max_moves=max_moves, **params)
            weak = [m for m in plan.moves if (r := benefit_over_cost(strategy, m, cluster)) is not None
                    and r < thresholds.get(m.source_id, 0.0)]
            if not weak:
                break
            below += [m.vm_id for m in weak]
            movable = cluster.vm_movable.copy()
            movable[[m.vm for m in weak]] = False
            cluster = dataclasses.replace(cluster, vm_movable=movable)
        else:  # the last round's weak moves were taken out: plan once more without them, so that the waves,
            # times and hosts to switch off are those of the moves proposed (a move still weak then is dropped)
            plan = engine.plan(strategy, cluster, costs, settings=settings, history=history, now_s=self._clock(),
                               max_moves=max_moves, **params)
            still = {m.vm_id for m in plan.moves if (r := benefit_over_cost(strategy, m, cluster)) is not None
                     and r < thresholds.get(m.source_id, 0.0)}
            below += sorted(still)
            plan = dataclasses.replace(plan, moves=tuple(m for m in plan.moves if m.vm_id not in still))
        used = sorted({thresholds.get(h, 0.0) for h in cluster.host_ids})
        return self._recommend(goal, host_id, plan, cluster, strategy, used, below, dry_run)

    def _recommend(self, goal: str, host_id: str, plan: engine.Plan, cluster: engine.ClusterArrays, strategy: str,
                   thresholds: list[float], below: list[str], dry_run: bool) -> Recommendation:
        moves, ratios = [], []
        for m in plan.moves:
            ratio = benefit_over_cost(strategy, m, cluster)
            ratios.append(ratio)
            gain = (f"gain {m.benefit:.3g} ({plan.benefit_unit})" + (f", {ratio:.1f}x its cost in "
                    f"{describe(strategy)}" if ratio is not None else ""))
            base = m.to_move()
            moves.append(dataclasses.replace(base, reasons=(*base.reasons, gain, f"wave {m.wave + 1}, starts about "
                                                            f"{m.start_s:.0f} s into the plan"),
                                             inputs=self._inputs(m, cluster)))
        vms = self._inventory.vms()
        level, cluster_name = self._automation.level([vms[m.vm_id] for m in moves if m.vm_id in vms],
                                                     self._inventory.hosts())
        summary = plan.summary
        if plan.dry_run:
            summary += " Cannot be evacuated: " + "; ".join(f"{r.vm_id} ({r.reason})" for r in plan.dry_run[:10])
        refused = [r for r in plan.refused if r.kind not in ("cap", "min gain")]
        if refused:
            summary += f" Refused: {len(refused)} VM(s), e.g. " + "; ".join(
                f"{r.vm_id} ({r.kind}: {r.reason})" for r in refused[:3])
        if below:
            limit = (f"the cluster's threshold {thresholds[0]:g}x" if len(thresholds) == 1 else
                     f"their cluster's threshold ({'/'.join(f'{t:g}' for t in thresholds)}x)")
            summary += f" {len(set(below))} move(s) gaining less than {limit} their cost were not proposed."
        if plan.power is not None and plan.power.switch_off:
            summary += (f" Switch off {len(plan.power.switch_off)} host(s) once empty "
                        f"({plan.power.saved_w:.0f} W).")
        measured = [r for r in ratios if r is not None]
        total_cost = sum(m.predicted_cost.total_time_ms.median for m in moves) / 1000
        mandatory = f"drain of {host_id} asked for" if goal == "drain" else ""
        benefit = float(sum(m.benefit for m in plan.moves)) if measured else None
        ratio = float(np.average(measured, weights=[m.predicted_cost.total_time_ms.median for m in moves])) \
            if measured else None
        rec = Recommendation(
            id="" if dry_run else self._new_id(), goal=goal if goal != "drain" else f"drain:{host_id}",
            created_at_s=self._clock(), moves=tuple(moves),
            summary=summary + (f" Predicted migration time in all: {total_cost:.0f} s." if moves else ""),
            priority=rate(mandatory, ratio), benefit=benefit, benefit_unit=plan.benefit_unit if measured else "",
            benefit_over_cost=ratio, automation=str(level), cluster=cluster_name)
        if dry_run:
            return rec
        self._store.add_recommendation(rec, {i: m.assessments for i, m in enumerate(moves)})
        self._metrics.recommendations.labels(goal).inc()
        return self._automation.apply(rec)

    def _inputs(self, m: engine.PlannedMove, cluster: engine.ClusterArrays) -> MigrationInputs:
        """What the move's prediction was made from, kept so that its outcome can be learned from."""
        p = m.parameters
        dirty = float(cluster.vm_dirty_rate_mib_s[m.vm])
        bandwidth = float(min(cluster.host_bandwidth_mib_s[m.source], cluster.host_bandwidth_mib_s[m.target]))
        known = not np.isnan(dirty)
        used, configured = float(cluster.vm_memory_used_mib[m.vm]), float(cluster.vm_memory_mib[m.vm])
        return MigrationInputs(used, dirty if known else min(bandwidth, p.bandwidth_mib_s), bandwidth,
                               p.bandwidth_mib_s, p.max_downtime_ms,
                               dirty_rate_source="latest sample" if known else "unknown: taken as the link's rate",
                               dirty_rate_known=known, memory_configured_mib=configured,
                               memory_source="in use" if used != configured else "configured",
                               deadline_ms=p.deadline_ms)
