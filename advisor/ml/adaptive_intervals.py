"""Intervals that hold: the served p10-p90 widened or narrowed online toward 80% coverage of recent outcomes.

Adaptive conformal inference in its quantile-tracking form (Gibbs & Candes 2021; Angelopoulos, Candes &
Tibshirani 2023, "Conformal PID control"). Per cell -- host profile, technique, regime (the rho band the learned
model's own conformal offsets are split by) and quantity -- a margin m, in log space, is added to both sides of
the interval the model serves. After each measured outcome

    m <- clip(m + step * (missed - (1 - target)), lowest, highest)

where `missed` is 1 when the value fell outside the interval served for it. More than 20% misses raise m (wider),
fewer lower it (narrower), so the long-run coverage of each cell tends to the target whatever the model; the
bounds keep a run of bad luck from making an interval useless. m starts at 0: the model's own interval.

Only measured values count: a migration that did not complete (an abort is censored: what it would have cost is
unknown) and a value not measured (None, or 0) leave every cell as it is. The state is rebuilt at start-up by
replaying the stored outcomes in the order they ended (each is stored with the interval served for it), which
gives the same margins as the process that served them.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from advisor.domain.migration import MigrationResult
from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.features.inputs import DEFAULT_PROFILE, InputTable
from advisor.ml.cost_batch import CostBatch, cost_batch, eager_batch
from advisor.ml.cost_features import RHO_BANDS, rho_band
from advisor.ml.predictor import CostPredictor, cost_rows

QUANTITIES = ("total_time_ms", "downtime_ms", "transferred_mib")
LABELS = {"total_time_ms": "total time", "downtime_ms": "downtime", "transferred_mib": "data"}


@dataclass(frozen=True)
class AdaptationRule:
    target: float = 0.8  # the coverage aimed at: p10-p90
    # Log units per outcome: a miss widens each side by e^0.16 (17%), a hit narrows it by e^0.04 (4%). Of 0.05,
    # 0.1, 0.2 and 0.3, 0.2 brought a profile left out closest to 80% within its first 239 lab migrations with the
    # least loss where the model's own interval already held (benchmarks/adaptive_intervals.py).
    step: float = 0.2
    lowest: float = -1.0  # narrowest: each side pulled in by up to e^1, never past the median
    highest: float = math.log(10.0)  # widest: each side pushed out by up to 10x

    def __post_init__(self) -> None:
        if not (0.0 < self.target < 1.0 and self.step > 0 and self.lowest <= 0.0 <= self.highest):
            raise ValueError(f"adaptation rule out of range: {self}")


def updated_margin(margin: float, missed: bool, rule: AdaptationRule) -> float:
    """The margin after one outcome: raised by a miss, lowered by a hit, within the rule's bounds."""
    moved = margin + rule.step * ((1.0 if missed else 0.0) - (1.0 - rule.target))
    return min(rule.highest, max(rule.lowest, moved))


def adapted(interval: Interval, margin: float) -> Interval:
    """The interval with `margin` added to both sides in log space; narrowing stops at the median."""
    if margin == 0.0:
        return interval
    factor = math.exp(margin)
    return Interval(min(interval.median, interval.low / factor), interval.median,
                    max(interval.median, interval.high * factor))


def regimes_of(inputs: Sequence[MigrationInputs]) -> list[str]:
    """The rho band of each (dirty rate over usable bandwidth), as the learned model's own intervals split them."""
    return regimes(np.array([i.dirty_rate_mib_s for i in inputs], dtype=np.float64),
                   np.array([min(i.bandwidth_mib_s, i.max_bandwidth_mib_s) for i in inputs], dtype=np.float64))


def regimes(dirty: np.ndarray, usable: np.ndarray) -> list[str]:
    """`regimes_of` from the columns of the rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(usable > 0, dirty / np.where(usable > 0, usable, 1.0), math.inf)
    return [str(b) for b in rho_band(rho)]


def regime(inputs: MigrationInputs) -> str:
    """regimes_of for one row, without numpy's cost per call (a served answer asks for it per row)."""
    usable = min(inputs.bandwidth_mib_s, inputs.max_bandwidth_mib_s)
    rho = inputs.dirty_rate_mib_s / usable if usable > 0 else math.inf
    return next((name for name, upper in RHO_BANDS if rho <= upper), RHO_BANDS[-1][0])


@dataclass(frozen=True)
class Cell:
    profile: str
    technique: str
    regime: str
    quantity: str


def cell_of(inputs: MigrationInputs, technique: Technique, quantity: str, band: str | None = None) -> Cell:
    return Cell(inputs.host_profile or DEFAULT_PROFILE, str(technique), band or regime(inputs), quantity)


@dataclass(frozen=True)
class CellState:
    cell: Cell
    margin: float
    outcomes: int  # measured outcomes seen in the cell
    recent_coverage: float  # share of the last RECENT inside the interval served for them

    @property
    def widening(self) -> float:
        """How much wider each side is than the model's own (e^margin; below 1: narrower)."""
        return math.exp(self.margin)


RECENT = 50


class AdaptiveIntervals:
    """The margins of every cell, updated by each measured outcome; shared by the served predictor (whichever
    model is served: a swap keeps them) and the outcome use case. Thread-safe: migrations end in their own threads.
    At most `max_cells` cells are kept (names of host profiles come from hosts' labels): beyond, an outcome of a
    new cell is not tracked and its intervals stay the model's own."""

    def __init__(self, rule: AdaptationRule = AdaptationRule(), max_cells: int = 1_000) -> None:
        self.rule = rule
        self._max_cells = max_cells
        self._lock = threading.Lock()
        self._margins: dict[Cell, float] = {}
        self._counts: dict[Cell, int] = {}
        self._recent: dict[Cell, deque[bool]] = {}

    def observe(self, inputs: MigrationInputs, predicted: MigrationCost, outcome: MigrationResult
                ) -> list[CellState]:
        """One ended migration, with the cost served for it: each measured quantity moves its cell's margin.
        Returns the cells moved, as they are now."""
        if not outcome.succeeded:
            return []  # censored (aborted) or failed: nothing measured to compare with
        moved: list[Cell] = []
        measured = {"total_time_ms": outcome.total_time_ms, "downtime_ms": outcome.downtime_ms,
                    "transferred_mib": outcome.transferred_mib}
        band = regime(inputs)
        with self._lock:
            for quantity in QUANTITIES:
                value = measured[quantity]
                if value is None or not value > 0:  # not measured
                    continue
                cell = cell_of(inputs, predicted.technique, quantity, band)
                if cell not in self._margins and len(self._margins) >= self._max_cells:
                    continue
                served: Interval = getattr(predicted, quantity)
                missed = not served.low <= value <= served.high
                self._margins[cell] = updated_margin(self._margins.get(cell, 0.0), missed, self.rule)
                self._counts[cell] = self._counts.get(cell, 0) + 1
                self._recent.setdefault(cell, deque(maxlen=RECENT)).append(not missed)
                moved.append(cell)
        return [s for s in (self.state(c) for c in moved) if s is not None]

    def margins(self) -> dict[Cell, float]:
        """Every cell's margin now (one lock for a batch of rows)."""
        with self._lock:
            return dict(self._margins)

    def any_adapted(self) -> bool:
        with self._lock:
            return any(m != 0.0 for m in self._margins.values())

    def states(self) -> list[CellState]:
        with self._lock:
            return [CellState(c, m, self._counts[c], sum(self._recent[c]) / len(self._recent[c]))
                    for c, m in sorted(self._margins.items(), key=lambda item: tuple(vars(item[0]).values()))]

    def state(self, cell: Cell) -> CellState | None:
        with self._lock:
            if cell not in self._margins:
                return None
            recent = self._recent[cell]
            return CellState(cell, self._margins[cell], self._counts[cell], sum(recent) / len(recent))

    def adapt(self, inputs: MigrationInputs, cost: MigrationCost) -> MigrationCost:
        """The cost with each quantity's interval adapted by its cell's margin, the notes saying by how much."""
        bands: dict[str, Interval] = {}
        said: list[str] = []
        band = regime(inputs)
        for quantity in QUANTITIES:
            original: Interval = getattr(cost, quantity)
            state = self.state(cell_of(inputs, cost.technique, quantity, band))
            if state is None or state.margin == 0.0:
                bands[quantity] = original
                continue
            bands[quantity] = adapted(original, state.margin)
            said.append(f"{LABELS[quantity]} {'widened' if state.margin > 0 else 'narrowed'} x{state.widening:.2f} "
                        f"({state.recent_coverage:.0%} of the last {min(state.outcomes, RECENT)} inside)")
        if not said:
            return cost
        note = (f"interval adapted to recent outcomes ({cost.technique}, {band}, "
                f"{inputs.host_profile or DEFAULT_PROFILE}): " + "; ".join(said))
        return replace(cost, total_time_ms=bands["total_time_ms"], downtime_ms=bands["downtime_ms"],
                       transferred_mib=bands["transferred_mib"], notes=(*cost.notes, note))


class AdaptivePredictor:
    """`inner` with its intervals adapted online (AdaptiveIntervals); the median and convergence are its own."""

    def __init__(self, inner: CostPredictor, intervals: AdaptiveIntervals) -> None:
        self.inner = inner
        self.intervals = intervals

    @property
    def model(self) -> ModelRef:
        return self.inner.model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        costs = self.inner.predict_many(rows)
        if not self.intervals.any_adapted():
            return costs
        return [self.intervals.adapt(inputs, cost) for (inputs, _), cost in zip(rows, costs, strict=True)]

    def predict_arrays(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> Any:
        """The inner model's arrays (plans ask for 10^5 rows at once), each row's p10 and p90 moved by its cell's
        margin; untouched while no cell is adapted."""
        inner = getattr(self.inner, "predict_arrays", None)
        arrays = inner(rows) if inner is not None else cost_rows(self.inner.predict_many(rows))
        if not self.intervals.any_adapted():
            return arrays
        return self._adapted(arrays, [i.host_profile or DEFAULT_PROFILE for i, _ in rows], [t for _, t in rows],
                             regimes_of([i for i, _ in rows]))

    def predict_batch(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostBatch:
        """`predict_many` as a batch (advisor.ml.cost_batch): the inner model's while no cell is adapted."""
        batch = cost_batch(self.inner, rows)
        if not self.intervals.any_adapted():
            return batch
        return eager_batch([self.intervals.adapt(inputs, batch.cost(k)) for k, (inputs, _) in enumerate(rows)])

    def predict_table_arrays(self, table: InputTable,
                             rows: Callable[[], Sequence[tuple[MigrationInputs, Technique]]]) -> Any:
        """`predict_arrays` of the rows `table` holds, from the table alone where the inner model can (`rows()`
        makes the rows for one that cannot)."""
        inner = getattr(self.inner, "predict_table_arrays", None)
        if inner is None:
            return self.predict_arrays(rows())
        arrays = inner(table, rows)
        if not self.intervals.any_adapted():
            return arrays
        return self._adapted(arrays, table.profiles, table.techniques,
                             regimes(table.dirty_rate_mib_s, table.usable_mib_s))

    def _adapted(self, arrays: Any, profiles: Sequence[str], techniques: Sequence[Technique],
                 bands: Sequence[str]) -> Any:
        """`arrays` with each row's p10 and p90 moved by the margin of its cell (profile, technique, rho band)."""
        margins = self.intervals.margins()
        moved = {}
        for quantity in QUANTITIES:
            factor = np.exp([margins.get(Cell(p, str(t), r, quantity), 0.0)
                             for p, t, r in zip(profiles, techniques, bands, strict=True)])
            a = np.array(getattr(arrays, quantity), dtype=np.float64, copy=True)
            a[:, 0] = np.minimum(a[:, 1], a[:, 0] / factor)
            a[:, 2] = np.maximum(a[:, 1], a[:, 2] * factor)
            moved[quantity] = a
        return replace(arrays, **moved)
