"""The one interface every cost model offers to the rest of the advisor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.features.inputs import InputTable
from advisor.physics import ANALYTIC_MODEL, FloatArray, analytic_costs, memory_part, validate, with_disk_copy


class CostPredictor(Protocol):
    """Predicts what migrating with a technique will cost. Every prediction names the model that made it."""

    @property
    def model(self) -> ModelRef: ...

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost: ...

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]: ...


@dataclass(frozen=True)
class CostRows:
    """Costs of many rows as arrays (the shape of a learned model's `predict_arrays`): (n, 3) p10/median/p90 per
    quantity, converges (0/1) and the probability of converging (NaN where the model gives none)."""

    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converges: FloatArray
    converge_probability: FloatArray

    def columns(self) -> tuple[FloatArray, ...]:
        return (self.total_time_ms, self.downtime_ms, self.transferred_mib, self.converges,
                self.converge_probability)


def cost_rows(costs: Sequence[MigrationCost]) -> CostRows:
    """The costs of `predict_many` as arrays, for callers that take `predict_arrays`' shape."""

    def col(quantity: str) -> FloatArray:
        return np.array([[getattr(c, quantity).low, getattr(c, quantity).median, getattr(c, quantity).high]
                         for c in costs], dtype=np.float64).reshape(len(costs), 3)

    return CostRows(col("total_time_ms"), col("downtime_ms"), col("transferred_mib"),
                    np.array([c.converges for c in costs], dtype=np.float64),
                    np.array([np.nan if c.converge_probability is None else c.converge_probability for c in costs],
                             dtype=np.float64))


def validate_table(table: InputTable, rows: Callable[[], Sequence[tuple[MigrationInputs, Technique]]]) -> None:
    """advisor.physics.validate over every row of `table` at once (the rows it holds, which `rows()` makes): the
    first row any of its checks refuses is found by array operations and given to `validate`, which raises the
    error it raises for that row."""
    checked = [np.asarray(getattr(table, name), dtype=np.float64)
               for name in ("memory_mib", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s",
                            "max_downtime_ms")]
    bad = np.logical_or.reduce([~np.isfinite(c) | (c < 0) for c in checked])
    bad |= (table.usable_mib_s <= 0) | (checked[0] <= 0)
    if bad.any():
        validate(rows()[int(np.argmax(bad))][0])


class AnalyticPredictor:
    """The physics alone. Also the fallback when no learned model can be loaded; `fallback_reason` says why."""

    def __init__(self, fallback_reason: str = "") -> None:
        self._model = ModelRef(
            ANALYTIC_MODEL.name, ANALYTIC_MODEL.version, ANALYTIC_MODEL.interval_kind, fallback_reason
        )

    @property
    def model(self) -> ModelRef:
        return self._model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        return [
            MigrationCost(c.technique, c.total_time_ms, c.downtime_ms, c.transferred_mib, c.converges, self._model,
                          c.notes)
            for c in analytic_costs(rows)
        ]


def widen_for_burst(cost: MigrationCost, burst: MigrationCost, burst_dirty_mib_s: float) -> MigrationCost:
    """The cost at the expected dirty rate, its upper bounds raised to cover the median cost at the burst (p90)
    dirty rate: the uncertainty of the input carried into the prediction."""
    return widen_to_burst_medians(cost, (burst.total_time_ms.median, burst.downtime_ms.median,
                                         burst.transferred_mib.median), burst_dirty_mib_s)


def widen_to_burst_medians(cost: MigrationCost, burst_medians: tuple[float, float, float],
                           burst_dirty_mib_s: float) -> MigrationCost:
    """`widen_for_burst` given only what it reads of the cost at the burst: its medians of total time, downtime
    and data (a caller holding them as arrays need not make that cost)."""

    def wider(mid: Interval, high: float) -> Interval:
        if mid.high >= high:  # already covers it: no new interval to make and check
            return mid
        return Interval(mid.low, mid.median, max(mid.high, high))

    time, downtime, data = burst_medians
    widened = (wider(cost.total_time_ms, time), wider(cost.downtime_ms, downtime), wider(cost.transferred_mib, data))
    if widened == (cost.total_time_ms, cost.downtime_ms, cost.transferred_mib):
        return cost
    note = f"upper bounds cover a burst to the p90 dirty-rate forecast ({burst_dirty_mib_s:.1f} MiB/s)"
    return MigrationCost(cost.technique, *widened, cost.converges, cost.model, (*cost.notes, note))


def predict_with_disks(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]
                       ) -> list[MigrationCost]:
    """Live rows' costs with their local disks' copy: memory predicted at the bandwidth the disk mirror leaves it,
    then the copy added (advisor.physics.disk). Rows without local disks are the predictor's own."""
    costs = predictor.predict_many([(memory_part(inputs), t) for inputs, t in rows])
    return [with_disk_copy(cost, inputs) for cost, (inputs, _) in zip(costs, rows, strict=True)]
