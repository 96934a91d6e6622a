"""The analytic model's answer for rows of MigrationInputs: a MigrationCost per row, one array pass for all.

The figures are point estimates; the interval is a sensitivity band (the same model with the dirty rate 20% lower
and 25% higher and the bandwidth 10% lower), not a calibrated interval -- the learned models give those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.physics.rounds import DEFAULT_CONSTANTS, TECHNIQUES, AnalyticArrays, AnalyticConstants, analytic_arrays

ANALYTIC_MODEL = ModelRef(name="analytic", version="1.0.0", interval_kind="sensitivity band")
# The band's cases: (dirty rate, bandwidth) factors of the easy, expected and hard case.
BAND_CASES = ((0.8, 1.0), (1.0, 1.0), (1.25, 0.9))


def validate(inputs: MigrationInputs) -> None:
    """Raises ValueError naming the first input the model cannot take."""
    for name in ("memory_mib", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms"):
        value = getattr(inputs, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if inputs.usable_bandwidth_mib_s <= 0:
        raise ValueError("usable bandwidth must be positive")
    if inputs.memory_mib <= 0:
        raise ValueError("memory_mib must be positive")


def _arrays(rows: Sequence[tuple[MigrationInputs, Technique]], cases: Sequence[tuple[float, float]],
            constants: AnalyticConstants) -> list[AnalyticArrays]:
    """The model on every row for each (dirty rate, bandwidth) factor of `cases`, in one pass over all of them."""
    def column(name: str) -> np.ndarray:
        return np.array([getattr(i, name) for i, _ in rows], dtype=np.float64)

    code = np.array([TECHNIQUES.index(t) for _, t in rows], dtype=np.int64)
    memory, downtime = column("memory_mib"), column("max_downtime_ms")
    dirty, bandwidth, cap = column("dirty_rate_mib_s"), column("bandwidth_mib_s"), column("max_bandwidth_mib_s")
    m = len(cases)
    a = analytic_arrays(
        np.tile(code, m), np.tile(memory, m),
        np.concatenate([dirty if d == 1.0 else dirty * d for d, _ in cases]),
        np.concatenate([bandwidth if b == 1.0 else bandwidth * b for _, b in cases]),
        np.concatenate([cap if b == 1.0 else cap * b for _, b in cases]),
        np.tile(downtime, m), constants)
    n = len(rows)
    return [a.take(np.arange(j * n, (j + 1) * n)) for j in range(m)]


def analytic_point(
    inputs: MigrationInputs, technique: Technique, constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> tuple[float, float, float, bool]:
    """(total time ms, downtime ms, MiB on the wire, converges): the plain formulas for one row."""
    validate(inputs)
    a = _arrays([(inputs, technique)], [(1.0, 1.0)], constants)[0]
    return float(a.total_time_ms[0]), float(a.downtime_ms[0]), float(a.transferred_mib[0]), bool(a.converges[0])


def analytic_costs(
    rows: Sequence[tuple[MigrationInputs, Technique]], constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> list[MigrationCost]:
    """Every row's cost with its sensitivity band; raises ValueError on the first input the model cannot take."""
    for inputs, technique in rows:
        validate(inputs)
        if not technique.is_live:
            raise ValueError(f"the analytic model predicts live migration, not {technique} "
                             "(its cost is its steps: advisor.physics.cold)")
    if not rows:
        return []
    cases = _arrays(rows, BAND_CASES, constants)
    mid = cases[1]

    def band(attr: str, k: int) -> Interval:
        low, median, high = sorted(float(getattr(case, attr)[k]) for case in cases)
        return Interval(low, median, high)

    costs = []
    for k, (inputs, technique) in enumerate(rows):
        notes: list[str] = []
        if technique.is_precopy:
            notes.append(f"{int(mid.rounds[k])} pre-copy rounds")
            if not mid.converges[k]:
                notes.append(
                    f"does not converge within {constants.max_rounds} rounds at "
                    f"{inputs.dirty_rate_mib_s:.1f} MiB/s dirtied vs {inputs.usable_bandwidth_mib_s:.1f} MiB/s; "
                    "figures assume it is forced to complete then"
                )
        if not inputs.dirty_rate_known:
            notes.append(inputs.dirty_rate_source or "dirty rate unknown")
        costs.append(MigrationCost(
            technique=technique,
            total_time_ms=band("total_time_ms", k),
            downtime_ms=band("downtime_ms", k),
            transferred_mib=band("transferred_mib", k),
            converges=bool(mid.converges[k]),
            model=ANALYTIC_MODEL,
            notes=tuple(notes),
        ))
    return costs


def predict_analytic(
    inputs: MigrationInputs, technique: Technique, constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> MigrationCost:
    return analytic_costs([(inputs, technique)], constants)[0]
