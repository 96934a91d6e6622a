"""The prediction path's shortcuts for the few rows of one question give what the plain array operations they
replaced give, bit for bit, on random inputs (the physics' rounds: tests/unit/physics/test_rounds_compacted.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.features.dirty import CPU_RATIO_MAX, HISTORY_S, build_dirty_features
from advisor.features.inputs import DEFAULT_PROFILE, InputTable
from advisor.features.samples import VM_FIELDS
from advisor.physics import Guard
from advisor.physics.guards import (
    MIN_WORKING_SET_MIB,
    dirties_faster_than_sent,
    guard_verdicts,
    taken_dirty_rate,
    verdicts,
    working_set_fits,
)
from advisor.physics.guards import deadline_shorter_than_pass as short_deadline


@pytest.mark.parametrize("seed", range(4))
def test_the_deciding_guard_is_the_first_that_decides(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keeps_up, short, fits = (rng.random((3, 500)) < 0.3)
    expected = np.select([short, keeps_up, fits], [Guard.DEADLINE, Guard.KEEPS_UP, Guard.FITS], Guard.NONE)
    got = guard_verdicts(keeps_up, short, fits)
    assert got.dtype == np.int64 and np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(3))
def test_the_compiled_guards_give_what_the_array_guards_give(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    code = rng.integers(0, 5, n)
    first, usable = rng.uniform(0, 1e5, n), np.exp(rng.uniform(0, 8, n))
    # a rate exactly at the link's (an unknown one), half or twice it, or anything
    dirty = np.where(rng.random(n) < 0.3, usable * rng.choice([1.0, 0.5, 2.0], n), np.exp(rng.uniform(-3, 8, n)))
    working_set = np.where(rng.random(n) < 0.4, np.nan, np.exp(rng.uniform(-3, 9, n)))
    downtime = np.exp(rng.uniform(0, 8, n))
    deadline = np.where(rng.random(n) < 0.5, 0.0, np.exp(rng.uniform(3, 14, n)))
    for known in (None, rng.random(n) < 0.7):
        taken = taken_dirty_rate(code, dirty, usable, known)
        budget = np.maximum(usable * downtime / 1000.0, 1e-6)
        over = np.maximum(np.fmax(taken * 1.0, working_set), MIN_WORKING_SET_MIB) / budget
        expected = guard_verdicts(dirties_faster_than_sent(code, taken, usable, over),
                                  short_deadline(code, first, usable, deadline),
                                  working_set_fits(code, first, usable, budget, working_set, taken, downtime, deadline))
        got = verdicts(code, first, usable, dirty, working_set, downtime, deadline, dirty_known=known)
        assert got.dtype == np.int64 and np.array_equal(got, expected)
        assert len(set(got.tolist())) == 4  # every guard decided some rows


def _inputs(rng: np.random.Generator) -> MigrationInputs:
    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.3 else value

    return MigrationInputs(
        memory_mib=float(rng.choice([128, 2048.5, 65536])), dirty_rate_mib_s=float(rng.lognormal(2, 2)),
        bandwidth_mib_s=float(rng.uniform(1, 1200)), max_bandwidth_mib_s=float(rng.uniform(1, 1200)),
        max_downtime_ms=float(rng.choice([30, 300, 1000])), dirty_rate_source="", burst_dirty_rate_mib_s=None,
        dirty_rate_known=bool(rng.random() < 0.8), memory_configured_mib=maybe(float(rng.uniform(128, 70000))),
        memory_source=str(rng.choice(["configured", "in use"])), working_set_mib=maybe(float(rng.uniform(0, 900))),
        nonzero_memory_mib=maybe(float(rng.uniform(0, 900))), deadline_ms=float(rng.choice([0, 5000, 120000])),
        host_profile=str(rng.choice(["", "lab", "rig9"])), bandwidth_source="")


@pytest.mark.parametrize("seed", range(4))
def test_the_input_table_of_served_rows_is_each_column_of_the_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [(_inputs(rng), Technique(str(rng.choice([str(t) for t in Technique if t.is_live]))))
            for _ in range(int(rng.integers(1, 40)))]
    table = InputTable.from_rows(rows)

    def column(name: str) -> np.ndarray:
        return np.array([math.nan if getattr(i, name) is None else getattr(i, name) for i, _ in rows], np.float64)

    for name in ("memory_mib", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms",
                 "memory_configured_mib", "deadline_ms", "working_set_mib", "nonzero_memory_mib"):
        got = getattr(table, name)
        assert got.flags.c_contiguous and np.array_equal(got, column(name), equal_nan=True), name
    assert table.techniques == tuple(t for _, t in rows)
    assert table.profiles == tuple(i.host_profile or DEFAULT_PROFILE for i, _ in rows)
    assert np.array_equal(table.memory_known, [i.memory_source != "configured" for i, _ in rows])
    assert np.array_equal(table.dirty_rate_known, [i.dirty_rate_known for i, _ in rows])


@pytest.mark.parametrize("seed", range(8))
def test_the_dirty_rate_window_features_are_numpy_s_mean_median_min_and_max(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        n = int(rng.integers(2, 30))
        times = np.sort(rng.uniform(-HISTORY_S + 1, 0, n))
        values = rng.lognormal(2, 1.5, (n, len(VM_FIELDS)))
        values[rng.random(values.shape) < 0.1] = np.nan
        features = build_dirty_features(times, values, VM_FIELDS, 0.0)
        if features is None:
            continue
        d = features.dirty
        row = features.row
        assert row[1] == d.mean() and row[3] == d.min() and row[4] == np.median(d) and row[5] == d.max()
        assert 0.0 <= row[8] <= CPU_RATIO_MAX and row[7] == d.mean() * row[8]
