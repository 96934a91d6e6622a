"""The `advisor` consolidation policy for the simulator: the project's own engine at every scheduling update.

At t = 0 it places VMs as CloudSim creates them (full MIPS, RAM and bandwidth checked, the most efficient hosts
first: the same creation-time placement as MFPED), so every policy starts from the same state. At each later
update it maps the snapshot onto the engine's arrays (bridge.py: forecast demand, slow-PE rules) and runs:

1. `balance` with hotspot relief only (no even-load phase): hosts whose forecast load exceeds `hot` shed the VMs
   that save the most SLA time over `horizon_s` per second of predicted migration, and only as many as save more
   than their migrations cost (advisor/planning/engine/overload.py), onto running hosts with room (packing
   weights, so an idle host is woken only when no running one fits);
2. `consolidate` on the cluster as relief leaves it: underloaded hosts are emptied whole, best power saved per
   migration second first, when every VM fits under the `headroom` elsewhere.
Both are cost-aware (the learned cost model by default) and share the anti-churn rules: a cooldown per VM that
grows with the cost of its last move, no return to a host a VM left, a minimum saving per move, and a cap on
moves per update. The policy only decides what to move; the simulator measures everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from advisor.domain.model import Technique
from advisor.evaluation.bridge import to_arrays
from advisor.evaluation.costs import LearnedMoveCosts, learned_predictor
from advisor.evaluation.ledger import Ledger
from advisor.planning.engine import (
    AnalyticMoveCosts,
    AntiChurn,
    ClusterArrays,
    FilterPolicy,
    MoveCosts,
    MoveHistory,
    PlanSettings,
    TechniqueRules,
    Weights,
)
from advisor.planning.engine.balance import balance
from advisor.planning.engine.consolidate import consolidate
from advisor.planning.engine.forecast import TUNED, Forecast, recent_peak
from advisor.simulation import Migration, Snapshot
from advisor.simulation.arrays import BoolArray, IntArray
from advisor.simulation.detectors import LocalRegression
from advisor.simulation.placement import MediumFit, place_all
from advisor.simulation.working import WorkingCluster

PACK = Weights(load=-1.0, energy=1.0)


@dataclass(frozen=True)
class AdvisorParams:
    """The policy's knobs, one set for PlanetLab and Bitbrains (docs/simulation-advisor.md says how they were
    chosen, what each alternative cost, and how they fare on held-out days). Those cross-validation chose come
    from `TUNED` (advisor/planning/engine/forecast.py), which serving's plan settings take as defaults too."""

    headroom: float = TUNED.headroom  # forecast CPU load a target may reach
    hot: float = TUNED.hot  # forecast CPU load above which a host is relieved (CloudSim's SLA counts any excess over 1)
    relief_headroom: float = 0.0  # forecast CPU load a relief target may reach (0: `headroom`)
    underload: float = TUNED.underload  # hosts below this forecast load are candidates to empty
    # per move (a Bitbrains host of 25 VMs at 20% saves 109 W: 4.4 W a move)
    min_saving_w: float = TUNED.min_saving_w
    max_moves_fraction: float = 1.0  # of the running VMs, per update: the first update empties most hosts
    min_moves: int = 10  # per update, whatever the fraction
    cooldown_s: float = 600.0
    cooldown_per_move_s: float = TUNED.cooldown_per_move_s  # x the predicted seconds, which are 2-10x CloudSim's
    return_factor: float = 2.0
    forecast: Forecast = TUNED.forecast
    forecast_window: int = 0  # overrides of the forecast's fields when > 0 (for tuning from the command line)
    forecast_spread: float = -1.0
    relief_load: float = -1.0  # weight of the target's load for relief: - packs, + spreads (least loaded)
    relief_energy: float = 1.0  # weight of the power added: waking an idle host costs its idle power
    pin_fading: int = 0  # leave alone VMs with an idle sample among the last this many (0: off)
    check_ram: bool = False
    max_downtime_ms: float = 0.0  # none: CloudSim models no downtime (300 ms refused most busy Bitbrains VMs)
    horizon_s: float = TUNED.horizon_s  # > 0: relief ranked by the SLA time it saves over this horizon (overload.py)
    costs: str = "learned"  # "learned" (the project's cost model) or "analytic"
    # >= 0: consolidation ranks hosts by power saved per migration second weighted by busy cores plus this (PDM)
    busy_floor: float = -1.0
    # >= 0: a consolidation target's chance of passing capacity (overload.py's model, with its VMs' spread) stays
    # at most this; its forecast load may then reach `consolidation_headroom` (0: `headroom`)
    consolidation_risk: float = -1.0
    consolidation_headroom: float = 0.0
    # memory-aware consolidation (Bitbrains is memory-bound): 1 = a host's VMs are placed largest share of a host
    # (CPU or memory, where memory is enforced) first, 0 = most CPU first; > 0 = a VM no host has the memory for may
    # go where moving one smaller VM elsewhere first makes room, trying this many hosts short of the least memory
    # (consolidate.py)
    consolidation_dominant: float = float(TUNED.dominant_order)
    consolidation_make_room: float = 0.0
    # > 0: consolidation targets also pay this x their CPU load after the move squared (weighers' balance, mean 0):
    # up to 0.5 a CPU-bound fit is unchanged, a memory-bound one spreads CPU, where the power curve is convex
    consolidation_balance: float = 0.0
    # > 0: consolidation empties only hosts whose VMs of now stayed below `underload` at each of their last this
    # many samples (a lull after a burst is not a calm: what is emptied then is refilled at the next burst)
    consolidation_calm_samples: float = 0.0


class AdvisorPolicy:
    """A simulator Policy; one instance per simulation (it remembers past moves for the anti-churn rules)."""

    def __init__(self, params: AdvisorParams | None = None, costs: MoveCosts | None = None) -> None:
        self.params = params or AdvisorParams()
        rules = TechniqueRules(techniques=(Technique.PRECOPY,))  # what CloudSim models
        if costs is None:
            costs = (LearnedMoveCosts(learned_predictor(), rules) if self.params.costs == "learned"
                     else AnalyticMoveCosts(rules))
        self.costs = costs
        self.history = MoveHistory()
        self.plans = 0
        self.moves = {"balance": 0, "consolidate": 0}  # migrations started, by strategy
        self.ledger = Ledger()  # what the plans predicted, beside what the simulator measured

    @property
    def name(self) -> str:
        return "advisor"

    def initial_placement(self, snapshot: Snapshot) -> IntArray:
        check = self.params.check_ram
        return place_all(WorkingCluster(snapshot), MediumFit(0.6, check_ram=check), LocalRegression(1.2))

    def settings(self, n_vms: int) -> PlanSettings:
        p = self.params
        cap = max(p.min_moves, math.ceil(p.max_moves_fraction * n_vms))
        return PlanSettings(
            filters=FilterPolicy(cpu_allocation_ratio=math.inf,
                                 memory_allocation_ratio=1.0 if p.check_ram else math.inf, max_cpu_after=p.headroom),
            churn=AntiChurn(cooldown_s=p.cooldown_s, cooldown_per_move_s=p.cooldown_per_move_s,
                            return_factor=p.return_factor, max_moves=cap),
            max_downtime_ms=p.max_downtime_ms,
        )

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        p, now = self.params, snapshot.time_s
        f = p.forecast
        if p.forecast_window > 0:
            f = replace(f, window=p.forecast_window)
        if p.forecast_spread >= 0:
            f = replace(f, spread=p.forecast_spread)
        self.ledger.observe(snapshot)
        arrays, index = to_arrays(snapshot, f, pin_fading=p.pin_fading)
        if arrays.n_vms == 0:
            return ()
        settings = self.settings(arrays.n_vms)
        history = self.history.prune(now, settings.churn)
        relief_settings = settings
        if p.relief_headroom > 0:
            relief_settings = replace(settings, filters=replace(settings.filters, max_cpu_after=p.relief_headroom))
        relief = balance(arrays, self.costs, settings=relief_settings, history=history, now_s=now, hot=p.hot,
                         tolerance=0.0, weights=Weights(load=p.relief_load, energy=p.relief_energy),
                         horizon_s=p.horizon_s)
        self.ledger.relief(snapshot, arrays, relief)
        moved = [(m.vm_id, m.source_id, m.target_id, m.cost.total_time_ms.median / 1000) for m in relief.moves]
        left = settings.churn.cap(arrays.n_vms) - len(relief.moves)
        plans = [relief]
        if left > 0:
            after = history.record(moved, now)
            packing = settings
            if p.consolidation_headroom > 0:
                packing = replace(settings, filters=replace(settings.filters, max_cpu_after=p.consolidation_headroom))
            plans.append(consolidate(relief.after, self.costs, settings=packing, history=after, now_s=now,
                                     underload=p.underload, min_saving_w=p.min_saving_w,
                                     weights=replace(PACK, balance=p.consolidation_balance),
                                     max_moves=left, busy_floor=None if p.busy_floor < 0 else p.busy_floor,
                                     overload_risk=None if p.consolidation_risk < 0 else p.consolidation_risk,
                                     dominant_order=p.consolidation_dominant > 0,
                                     make_room=int(p.consolidation_make_room),
                                     recently_busy=self._recently_busy(snapshot, relief.after, index)))
        migrations = []
        for plan in plans:
            self.moves[plan.strategy] += len(plan.moves)
            self.ledger.moves(plan, [int(index[m.vm]) for m in plan.moves])
            for m in plan.moves:
                migrations.append(Migration(int(index[m.vm]), m.target))
                moved.append((m.vm_id, m.source_id, m.target_id, m.cost.total_time_ms.median / 1000))
        self.history = history.record(moved, now)
        self.plans += 1
        return migrations

    def _recently_busy(self, snapshot: Snapshot, cluster: ClusterArrays, index: IntArray) -> BoolArray | None:
        """Hosts whose VMs of now (after relief) asked for `underload` or more at one of their last
        `consolidation_calm_samples` samples; None when that rule is off."""
        samples = int(self.params.consolidation_calm_samples)
        if samples <= 0:
            return None
        have = min(snapshot.history_len, snapshot.vm_history.shape[1])
        peak = recent_peak(np.asarray(snapshot.vm_history)[index], have, cluster.loads.vm_host, cluster.vm_vcpus,
                           cluster.n_hosts, samples)
        busy: BoolArray = peak >= self.params.underload * cluster.host_cores
        return busy


def make(params: AdvisorParams | None = None, **options: object) -> AdvisorPolicy:
    """Factory for the simulator's registry; `check_ram=True` enforces RAM like the baselines' option."""
    base = params or AdvisorParams()
    if options:
        base = replace(base, **options)  # type: ignore[arg-type]
    return AdvisorPolicy(base)
