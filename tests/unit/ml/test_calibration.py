"""The running error of predictions, per technique and quantity, and when it becomes drift."""

from __future__ import annotations

import pytest

from advisor.domain.migration import MigrationResult
from advisor.domain.model import Interval, MigrationCost, ModelRef, Technique
from advisor.ml.calibration import RunningErrors


def cost(median_ms: float, technique: Technique = Technique.PRECOPY) -> MigrationCost:
    return MigrationCost(technique, Interval(0.8 * median_ms, median_ms, 1.2 * median_ms), Interval(10, 20, 30),
                         Interval(90, 100, 110), True, ModelRef("lightgbm-cost", "9.9"))


def test_the_running_error_is_the_median_over_the_window_and_drift_needs_enough_of_it() -> None:
    errors = RunningErrors(window=5, drift_error=0.5, min_n=3)
    errors.add(cost(1000), MigrationResult(True, total_time_ms=1000, downtime_ms=20, transferred_mib=100))
    errors.add(cost(1000), MigrationResult(True, total_time_ms=500, downtime_ms=40, transferred_mib=100))
    errors.add(cost(1000), MigrationResult(False, total_time_ms=9, downtime_ms=9, transferred_mib=9))  # ignored
    by = {(e.technique, e.quantity): e for e in errors.summary()}
    time = by[("precopy", "total_time_ms")]
    assert (time.n, time.median_ape, time.coverage, time.drift) == (2, pytest.approx(0.5), 0.5, False)
    assert by[("precopy", "downtime_ms")].median_ape == pytest.approx(0.25) and time.model == "lightgbm-cost 9.9"
    for _ in range(3):  # the model now misses by a factor of 4: drift, once there is enough of it
        errors.add(cost(1000), MigrationResult(True, total_time_ms=250, downtime_ms=20, transferred_mib=100))
    time = next(e for e in errors.summary() if e.quantity == "total_time_ms")
    assert time.n == 5 and time.median_ape == pytest.approx(3.0) and time.drift


def test_techniques_are_kept_apart() -> None:
    errors = RunningErrors()
    errors.add(cost(1000, Technique.POSTCOPY), MigrationResult(True, total_time_ms=1000, downtime_ms=20,
                                                               transferred_mib=100))
    assert {e.technique for e in errors.summary()} == {"postcopy"}
