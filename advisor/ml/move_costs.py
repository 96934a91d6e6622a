"""A cost model behind the planning engine's `MoveCosts` protocol.

`LearnedMoveCosts` asks a CostPredictor (the learned model, or the analytic one it falls back to) for every
allowed technique of every candidate move in one `predict_arrays` call, then lets the engine's `select` choose
the technique (`estimates`, shared with the plans' pricing of the moves they choose).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.predictor import CostPredictor, cost_rows
from advisor.planning.engine import TECHNIQUES, CostEstimates, CostRequest, TechniqueRules, select
from advisor.planning.engine.snapshot import FloatArray


def cost_arrays(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]) -> tuple[FloatArray, ...]:
    """(total ms, downtime ms, MiB) as (n, 3) arrays, converges (0/1) and the probability of converging (NaN when
    the model gives none), from predict_arrays when the model has it (one call for every row)."""
    batch = getattr(predictor, "predict_arrays", None)
    if batch is not None:
        a = batch(rows)
        converges = np.asarray(a.converges, dtype=np.float64)
        p = np.asarray(getattr(a, "converge_probability", np.full(converges.shape, np.nan)), dtype=np.float64)
        return a.total_time_ms, a.downtime_ms, a.transferred_mib, converges, p
    return cost_rows(predictor.predict_many(rows)).columns()


def estimates(request: CostRequest, used: Sequence[int], arrays: tuple[FloatArray, ...], rules: TechniqueRules,
              name: str, *, memory_only: bool = False,
              cold: tuple[FloatArray, FloatArray, FloatArray] | None = None) -> CostEstimates:
    """The engine's CostEstimates from per-technique predictions (`cost_arrays` of rows grouped by technique, the
    j-th group TECHNIQUES[used[j]] for every request row; none when no row): a technique not predicted is never
    chosen. The probability of converging is the model's own when it gives one; else the share of the p10-p90
    downtime interval below the limit (linear); 1 for post-copy. `memory_only`: the predictions are of memory
    alone, the request's local disks' copy is added to them; `cold`: the cold moves' costs (`select`)."""
    n, t = len(request), len(TECHNIQUES)
    limit = request.max_downtime_ms or 300.0
    total = np.full((t, n, 3), 1e12)
    down = np.full((t, n, 3), 1e12)
    data = np.full((t, n, 3), 1e12)
    converges = np.zeros((t, n), dtype=bool)
    p = np.zeros((t, n))
    if arrays:
        tt, dd, mm, cc, pp = arrays
        for j, k in enumerate(used):
            part = slice(j * n, (j + 1) * n)
            total[k], down[k], data[k], converges[k] = tt[part], dd[part], mm[part], cc[part] > 0
            low, high = dd[part, 0], dd[part, 2]
            share = np.clip((limit - low) / np.maximum(high - low, 1e-9), 0.0, 1.0)
            p[k] = 1.0 if TECHNIQUES[k] is Technique.POSTCOPY else np.where(np.isnan(pp[part]), share, pp[part])
    if memory_only:
        request.add_disks(total, down, data, converges, p)
    return select(request, total, down, data, converges, p, rules, name, cold)


class LearnedMoveCosts:
    """The engine's MoveCosts over a CostPredictor (the learned model, or the analytic one it falls back to), from
    the snapshot's arrays alone: fast enough for the 10^4-10^5 candidate rows a plan ranks, but without what
    advice measures (working set, dirty-rate forecast); plans price the moves they choose as advice does
    (advisor.usecases.plan_costs). `profiles` is each VM's host profile by its index in the snapshot (its
    source host's `advisor.profile`; '' or none: the model's default)."""

    def __init__(self, predictor: CostPredictor, rules: TechniqueRules | None = None,
                 profiles: Sequence[str] = ()) -> None:
        self.predictor = predictor
        self.rules = rules or TechniqueRules()
        self.profiles = profiles

    @property
    def name(self) -> str:
        m = self.predictor.model
        return f"{m.name} {m.version}" + (f" (fallback: {m.fallback_reason})" if m.fallback_reason else "")

    def estimate(self, request: CostRequest) -> CostEstimates:
        used = [k for k, tech in enumerate(TECHNIQUES) if tech in self.rules.techniques]
        limit = request.max_downtime_ms or 300.0
        memory = np.maximum(request.memory_mib, 1.0)
        bandwidth = np.maximum(request.memory_bandwidth(), 1e-3)  # memory's share beside a local disks' mirror
        configured = memory if request.memory_configured_mib is None else request.memory_configured_mib
        profiles = self.profiles
        known = (np.ones(len(request.vm), dtype=np.bool_) if request.dirty_rate_known is None
                 else np.asarray(request.dirty_rate_known, dtype=np.bool_))
        rows = [
            (MigrationInputs(float(m), float(d), float(b), float(b), limit, deadline_ms=request.deadline_ms,
                             host_profile=profiles[v] if profiles else "", memory_configured_mib=float(c),
                             memory_source="configured" if m >= c else "in use", dirty_rate_known=r), TECHNIQUES[k])
            for k in used
            for v, m, c, d, b, r in zip(request.vm.tolist(), memory.tolist(),
                                        np.asarray(configured, dtype=np.float64).tolist(),
                                        np.maximum(request.dirty_rate_mib_s, 0.0).tolist(), bandwidth.tolist(),
                                        known.tolist(), strict=True)
        ]
        return estimates(request, used, cost_arrays(self.predictor, rows) if rows else (), self.rules, self.name,
                         memory_only=True)
