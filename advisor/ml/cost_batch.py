"""Costs of many rows as arrays, each row's MigrationCost made only when it is asked for.

A plan prices thousands of moves for every technique, reads the costs back as arrays to choose and schedule, and
stores the cost of the one technique each move takes. A `CostBatch` holds the arrays a model predicted and makes
a row's MigrationCost from them on demand: the very object `predict_many` would have made of that row (its notes,
its model), made for the rows a plan keeps instead of for every row it priced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from advisor.domain.model import MigrationCost, MigrationInputs, Technique
from advisor.ml.predictor import CostPredictor, cost_rows, widen_to_burst_medians
from advisor.physics import FloatArray, memory_part, with_disk_copy

QUANTITIES = ("total_time_ms", "downtime_ms", "transferred_mib")


@dataclass
class CostBatch:
    """Per row: (n, 3) p10 / median / p90 of each quantity, whether it converges and the probability of it (NaN
    where none is given, as MigrationCost.converge_probability None); `make(k)` makes row k's MigrationCost."""

    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converges: np.ndarray
    converge_probability: FloatArray
    make: Callable[[int], MigrationCost]
    _made: dict[int, MigrationCost] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.converges.shape[0])

    def cost(self, k: int) -> MigrationCost:
        """Row k's MigrationCost (made once)."""
        made = self._made.get(k)
        if made is None:
            made = self._made[k] = self.make(k)
        return made

    def medians(self, k: int) -> tuple[float, float, float]:
        """Row k's medians of total time, downtime and data: those of its MigrationCost, without making it."""
        return (float(self.total_time_ms[k, 1]), float(self.downtime_ms[k, 1]), float(self.transferred_mib[k, 1]))

    def columns(self) -> tuple[FloatArray, ...]:
        """As predictor.CostRows.columns: converges as 0/1."""
        return (self.total_time_ms, self.downtime_ms, self.transferred_mib,
                self.converges.astype(np.float64), self.converge_probability)


def eager_batch(costs: Sequence[MigrationCost]) -> CostBatch:
    """A batch of costs already made."""
    a = cost_rows(costs)
    made = list(costs)
    return CostBatch(a.total_time_ms, a.downtime_ms, a.transferred_mib, a.converges > 0, a.converge_probability,
                     made.__getitem__)


def cost_batch(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostBatch:
    """The predictor's `predict_batch` of the rows where it has one, else its `predict_many` as a batch."""
    batch = getattr(predictor, "predict_batch", None)
    if batch is not None and rows:
        result: CostBatch = batch(rows)
        return result
    return eager_batch(predictor.predict_many(rows) if rows else [])


def batch_with_disks(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostBatch:
    """predictor.predict_with_disks as a batch: the rows with local disks made at once, with their copy added."""
    batch = cost_batch(predictor, [(memory_part(inputs), t) for inputs, t in rows])
    carried = [k for k, (inputs, t) in enumerate(rows) if inputs.local_disk_used_mib and t.is_live]
    if not carried:
        return batch
    return replaced(batch, carried, [with_disk_copy(batch.cost(k), rows[k][0]) for k in carried])


def replaced(batch: CostBatch, rows: Sequence[int], costs: Sequence[MigrationCost]) -> CostBatch:
    """`batch` with these rows' costs (arrays and objects) replaced by `costs`."""
    a = cost_rows(costs)
    index = np.asarray(rows, dtype=np.int64)
    out = _copied(batch, batch.cost)
    for q in QUANTITIES:
        getattr(out, q)[index] = getattr(a, q)
    out.converges[index] = a.converges > 0
    out.converge_probability[index] = a.converge_probability
    out._made.update(zip(rows, costs, strict=True))
    return out


def _copied(batch: CostBatch, make: Callable[[int], MigrationCost]) -> CostBatch:
    return CostBatch(batch.total_time_ms.copy(), batch.downtime_ms.copy(), batch.transferred_mib.copy(),
                     batch.converges.copy(), batch.converge_probability.copy(), make)


def gathered(n: int, parts: Sequence[tuple[Sequence[int], CostBatch]]) -> CostBatch:
    """A batch of n rows, the rows `positions` of each part being that part's first rows, in order."""
    part_of = np.zeros(n, dtype=np.int64)
    row_of = np.zeros(n, dtype=np.int64)
    out = CostBatch(np.empty((n, 3)), np.empty((n, 3)), np.empty((n, 3)), np.zeros(n, dtype=np.bool_),
                    np.empty(n), lambda k: parts[int(part_of[k])][1].cost(int(row_of[k])))
    for j, (positions, batch) in enumerate(parts):
        index = np.asarray(positions, dtype=np.int64)
        m = index.shape[0]
        part_of[index], row_of[index] = j, np.arange(m)
        for q in QUANTITIES:
            getattr(out, q)[index] = getattr(batch, q)[:m]
        out.converges[index] = batch.converges[:m]
        out.converge_probability[index] = batch.converge_probability[:m]
    return out


def widened(batch: CostBatch, rows: Sequence[int], burst: CostBatch, burst_rows: Sequence[int],
            rates: Sequence[float]) -> CostBatch:
    """predictor.widen_for_burst of each of `rows` by its cost at the burst (`burst_rows` of `burst`, at the dirty
    rate `rates`): each upper bound raised to the burst's median where that is higher, and then no probability of
    converging."""
    if not rows:
        return batch
    index, at_burst = np.asarray(rows, dtype=np.int64), np.asarray(burst_rows, dtype=np.int64)
    out = _copied(batch, batch.cost)
    raised = np.zeros(index.shape[0], dtype=np.bool_)
    for q in QUANTITIES:
        high, median = getattr(batch, q)[index, 2], getattr(burst, q)[at_burst, 1]
        getattr(out, q)[index, 2] = np.where(median > high, median, high)  # Python's max(high, median)
        raised |= median > high
    out.converge_probability[index[raised]] = np.nan  # a widened cost says no probability (widen_for_burst)
    burst_of = dict(zip(rows, zip(burst_rows, rates, strict=True), strict=True))

    def make(k: int) -> MigrationCost:
        if k not in burst_of:
            return batch.cost(k)
        b, rate = burst_of[k]
        return widen_to_burst_medians(batch.cost(k), burst.medians(b), rate)

    out.make = make
    return out
