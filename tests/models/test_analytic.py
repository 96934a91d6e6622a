"""The analytic model follows the physics of the field guide, section 1."""

from __future__ import annotations

import itertools
import math

import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.physics import TECHNIQUES, analytic_point, predict_analytic


def inputs(dirty: float, bandwidth: float = 100.0, memory: float = 1024.0, downtime: float = 300.0) -> MigrationInputs:
    return MigrationInputs(memory, dirty, bandwidth, bandwidth, downtime)


def test_idle_precopy_sends_memory_once() -> None:
    total, downtime, sent, converges = analytic_point(inputs(0.0), Technique.PRECOPY)
    assert converges
    assert sent == pytest.approx(1024.0, rel=0.01)
    assert total == pytest.approx(10_240, rel=0.01)
    assert downtime < 10


def test_precopy_rounds_follow_the_geometric_series() -> None:
    # rho = 0.5, budget = 100 MiB/s x 0.3 s = 30 MiB: rounds send 1024, 512, 256, 128, 64, 32; then the 16 MiB
    # dirtied meanwhile fit the budget and go in the stop-and-copy.
    total, downtime, sent, converges = analytic_point(inputs(50.0), Technique.PRECOPY)
    assert converges
    assert sent == pytest.approx(1024 + 512 + 256 + 128 + 64 + 32 + 16, rel=0.01)
    assert downtime == pytest.approx(16 / 100 * 1000, rel=0.05)
    assert total == pytest.approx(sent / 100 * 1000, rel=0.01)


def test_precopy_does_not_converge_when_dirtying_faster_than_bandwidth() -> None:
    cost = predict_analytic(inputs(150.0), Technique.PRECOPY)
    assert not cost.converges
    assert any("does not converge" in note for note in cost.notes)


def test_autoconverge_converges_where_plain_precopy_does_not() -> None:
    assert analytic_point(inputs(150.0), Technique.PRECOPY_AUTOCONVERGE)[3]


@pytest.mark.parametrize("technique", [t for t in Technique if t.is_precopy])
def test_more_dirty_rate_never_predicts_faster_precopy(technique: Technique) -> None:
    times = [analytic_point(inputs(d), technique)[0] for d in range(0, 200, 5)]
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(times))


def test_postcopy_time_tracks_memory_over_bandwidth() -> None:
    for memory, bandwidth in [(1024, 100), (4096, 50), (512, 1000)]:
        total, downtime, _, _ = analytic_point(inputs(500.0, bandwidth, memory), Technique.POSTCOPY)
        assert total == pytest.approx(memory / bandwidth * 1000, rel=0.03)
        assert downtime < 5


def test_intervals_are_ordered_and_name_the_model() -> None:
    for technique in TECHNIQUES:
        cost = predict_analytic(inputs(60.0), technique)
        for interval in (cost.total_time_ms, cost.downtime_ms, cost.transferred_mib):
            assert interval.low <= interval.median <= interval.high
        assert cost.model.name == "analytic" and cost.model.version


@pytest.mark.parametrize("bad", [math.nan, -1.0, math.inf])
def test_bad_inputs_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="dirty_rate_mib_s"):
        predict_analytic(inputs(bad), Technique.PRECOPY)


def test_a_burst_widens_only_the_upper_bounds_and_says_so() -> None:
    from advisor.ml.predictor import widen_for_burst

    calm = predict_analytic(inputs(20.0), Technique.PRECOPY)
    burst = predict_analytic(inputs(60.0), Technique.PRECOPY)
    wide = widen_for_burst(calm, burst, 60.0)
    assert wide.total_time_ms.median == calm.total_time_ms.median
    assert wide.total_time_ms.low == calm.total_time_ms.low
    assert wide.total_time_ms.high >= burst.total_time_ms.median > calm.total_time_ms.high
    assert "p90 dirty-rate forecast (60.0 MiB/s)" in wide.notes[-1]
    assert widen_for_burst(calm, calm, 20.0) is calm


def test_cold_is_not_the_analytic_models_to_predict() -> None:
    with pytest.raises(ValueError, match="not cold"):
        predict_analytic(inputs(60.0), Technique.COLD)
