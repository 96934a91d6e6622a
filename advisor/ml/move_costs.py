"""A cost model behind the planning engine's `MoveCosts` protocol.

`LearnedMoveCosts` asks a CostPredictor (the learned model, or the analytic one it falls back to) for every
allowed technique of every candidate move in one call, then lets the engine's `select` choose the technique
(`estimates`, shared with the plans' pricing of the moves they choose). The candidates go to the model as the
arrays of an InputTable (`predict_table_arrays`), without a MigrationInputs per row: a rebalance at 10,000 hosts
ranks 10^5 rows. A predictor without that path (or one serving a profile by other means) gets the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.features.inputs import DEFAULT_PROFILE, InputTable
from advisor.ml.predictor import CostPredictor, cost_rows
from advisor.planning.engine import TECHNIQUES, CostEstimates, CostRequest, TechniqueRules, select
from advisor.planning.engine.snapshot import BoolArray, FloatArray


def cost_arrays(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]) -> tuple[FloatArray, ...]:
    """(total ms, downtime ms, MiB) as (n, 3) arrays, converges (0/1) and the probability of converging (NaN when
    the model gives none), from predict_arrays when the model has it (one call for every row)."""
    batch = getattr(predictor, "predict_arrays", None)
    if batch is not None:
        return _columns(batch(rows))
    return cost_rows(predictor.predict_many(rows)).columns()


def table_cost_arrays(predictor: CostPredictor, table: InputTable,
                      rows: Callable[[], list[tuple[MigrationInputs, Technique]]]) -> tuple[FloatArray, ...]:
    """`cost_arrays` of the rows `table` holds, through the predictor's `predict_table_arrays` when it has it;
    `rows()` makes them for a predictor that needs them."""
    batch = getattr(predictor, "predict_table_arrays", None)
    if batch is not None:
        return _columns(batch(table, rows))
    return cost_arrays(predictor, rows())


def _columns(a: Any) -> tuple[FloatArray, ...]:
    converges = np.asarray(a.converges, dtype=np.float64)
    p = np.asarray(getattr(a, "converge_probability", np.full(converges.shape, np.nan)), dtype=np.float64)
    return a.total_time_ms, a.downtime_ms, a.transferred_mib, converges, p


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
    the snapshot's arrays alone: fast enough for the 10^4-10^5 candidate rows a plan ranks. They hold what advice
    reads (memory in use and resident, dirty rate and working set judged as advice judges them, the hosts' load)
    but the newest sample, not the dirty-rate forecast, nor the traffic already on a link; plans price the moves
    they choose as advice does (advisor.usecases.plan_costs). `profiles` is each VM's host profile by its index
    in the snapshot (its source host's `advisor.profile`; '' or none: the model's default)."""

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
        if not used or not len(request):
            return estimates(request, used, (), self.rules, self.name, memory_only=True)
        table = self._table(request, used)
        arrays = table_cost_arrays(self.predictor, table, lambda: self._rows(request, used))
        return estimates(request, used, arrays, self.rules, self.name, memory_only=True)

    def _columns(self, request: CostRequest) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        """Each request row's memory, configured memory, dirty rate, bandwidth and whether its rate was measured,
        as the model reads them."""
        memory = np.maximum(request.memory_mib, 1.0)
        bandwidth = np.maximum(request.memory_bandwidth(), 1e-3)  # memory's share beside a local disks' mirror
        configured = memory if request.memory_configured_mib is None else request.memory_configured_mib
        known = (np.ones(len(request.vm), dtype=np.bool_) if request.dirty_rate_known is None
                 else np.asarray(request.dirty_rate_known, dtype=np.bool_))
        return (np.asarray(memory, dtype=np.float64), np.asarray(configured, dtype=np.float64),
                np.maximum(request.dirty_rate_mib_s, 0.0).astype(np.float64), bandwidth.astype(np.float64), known)

    def _table(self, request: CostRequest, used: Sequence[int]) -> InputTable:
        """The rows of `_rows` as one InputTable (what InputTable.from_rows would make of them), every request
        row once per technique used."""
        memory, configured, dirty, bandwidth, known = self._columns(request)
        limit = float(request.max_downtime_ms or 300.0)
        n, m = len(request), len(used)

        def tiled(column: np.ndarray) -> np.ndarray:
            return np.tile(column, m)

        profiles = self.profiles
        own = ([profiles[v] or DEFAULT_PROFILE for v in request.vm.tolist()] if profiles
               else [DEFAULT_PROFILE] * n)
        resident = request.resident_memory_mib
        if resident is not None and np.isnan(resident).all():
            resident = None  # measured in no row (the usual case today): the model's work as without the column
        floor = request.dirty_at_floor

        def measured(column: FloatArray | None) -> np.ndarray:
            return np.full(n * m, np.nan) if column is None else tiled(np.asarray(column, dtype=np.float64))

        return InputTable(
            tuple(TECHNIQUES[k] for k in used for _ in range(n)), tiled(memory), tiled(dirty), tiled(bandwidth),
            tiled(bandwidth), np.full(n * m, limit), tiled(configured), tiled(~(memory >= configured)),
            np.full(n * m, float(request.deadline_ms)), measured(request.working_set_mib), tuple(own * m),
            np.full(n * m, np.nan), tiled(known), measured(request.load_per_cpu),
            resident_memory_mib=None if resident is None else tiled(np.asarray(resident, dtype=np.float64)),
            dirty_at_floor=None if floor is None or not floor.any() else tiled(np.asarray(floor, dtype=np.bool_)))

    def _rows(self, request: CostRequest, used: Sequence[int]) -> list[tuple[MigrationInputs, Technique]]:
        """Every request row once per technique used, as MigrationInputs (for a predictor without the table
        path)."""
        memory, configured, dirty, bandwidth, known = self._columns(request)
        limit = request.max_downtime_ms or 300.0
        profiles = self.profiles
        n = len(request)

        def measured(column: FloatArray | None) -> list[float | None]:
            return [None] * n if column is None else [None if math.isnan(x) else x
                                                      for x in np.asarray(column, float).tolist()]

        floor = [False] * n if request.dirty_at_floor is None else np.asarray(request.dirty_at_floor, bool).tolist()
        return [
            (MigrationInputs(float(m), float(d), float(b), float(b), limit, deadline_ms=request.deadline_ms,
                             host_profile=profiles[v] if profiles else "", memory_configured_mib=float(c),
                             memory_source="configured" if m >= c else "in use", dirty_rate_known=r,
                             resident_memory_mib=s, working_set_mib=w, dirty_rate_at_floor=f, load_per_cpu=h),
             TECHNIQUES[k])
            for k in used
            for v, m, c, d, b, r, s, w, f, h in zip(
                request.vm.tolist(), memory.tolist(), configured.tolist(), dirty.tolist(), bandwidth.tolist(),
                known.tolist(), measured(request.resident_memory_mib), measured(request.working_set_mib), floor,
                measured(request.load_per_cpu), strict=True)
        ]
