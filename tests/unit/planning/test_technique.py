"""The technique policy: cheapest technique meeting every limit, else the least bad one, with reasons."""

from __future__ import annotations

import pytest

from advisor.domain.model import Interval, MigrationCost, ModelRef, Objective, Technique
from advisor.planning.technique import TechniqueRules, choose_technique

MODEL = ModelRef("test", "0")


def cost(technique: Technique, time_ms: float, downtime_ms: float, *, converges: bool = True) -> MigrationCost:
    return MigrationCost(
        technique=technique,
        total_time_ms=Interval(time_ms * 0.9, time_ms, time_ms * 1.2),
        downtime_ms=Interval(downtime_ms * 0.5, downtime_ms, downtime_ms * 1.5),
        transferred_mib=Interval(1000.0, 1100.0, 1300.0),
        converges=converges,
        model=MODEL,
    )


def test_chooses_the_fastest_technique_that_meets_every_limit() -> None:
    costs = [
        cost(Technique.PRECOPY, 10_000, 150),
        cost(Technique.PRECOPY_XBZRLE, 8_000, 250),  # downtime up to 375 ms breaks the 300 ms limit
        cost(Technique.POSTCOPY, 12_000, 2),
    ]
    choice = choose_technique(costs, Objective(max_downtime_ms=300), bandwidth_mib_s=100, postcopy_allowed=True)
    assert choice.parameters.technique is Technique.PRECOPY
    assert choice.parameters.postcopy_after_ms is not None  # safety net: switch if pre-copy overruns
    assert any("precopy_xbzrle" in r and "downtime" in r for r in choice.reasons)


def test_post_copy_when_no_pre_copy_converges_and_starts_at_once() -> None:
    costs = [cost(Technique.PRECOPY, 9_000, 900, converges=False), cost(Technique.POSTCOPY, 12_000, 2)]
    choice = choose_technique(costs, Objective(), bandwidth_mib_s=100, postcopy_allowed=True)
    assert choice.parameters.technique is Technique.POSTCOPY
    assert choice.parameters.postcopy_after_ms == 0.0


def test_post_copy_forbidden_falls_back_to_the_lowest_downtime_with_reasons() -> None:
    costs = [
        cost(Technique.PRECOPY, 9_000, 900),
        cost(Technique.PRECOPY_AUTOCONVERGE, 11_000, 400),
        cost(Technique.POSTCOPY, 5_000, 2),
    ]
    choice = choose_technique(costs, Objective(max_downtime_ms=300), bandwidth_mib_s=100, postcopy_allowed=False)
    assert choice.parameters.technique is Technique.PRECOPY_AUTOCONVERGE
    assert choice.parameters.postcopy_after_ms is None
    assert "post-copy not allowed for this VM" in choice.reasons
    assert any("no technique meets every limit" in r for r in choice.reasons)


def test_minimise_transferred_ranks_by_bytes() -> None:
    small = MigrationCost(Technique.PRECOPY_COMPRESS, Interval(1, 20_000, 30_000), Interval(1, 100, 150),
                          Interval(300, 400, 500), True, MODEL)
    costs = [cost(Technique.PRECOPY, 10_000, 100), small]
    objective = Objective(max_downtime_ms=300, minimize_transferred=True)
    choice = choose_technique(costs, objective, bandwidth_mib_s=100, postcopy_allowed=True)
    assert choice.parameters.technique is Technique.PRECOPY_COMPRESS
    assert choice.parameters.compression_threads > 0


def test_no_costs_is_an_error() -> None:
    with pytest.raises(ValueError, match="no predicted costs"):
        choose_technique([], Objective(), bandwidth_mib_s=100, postcopy_allowed=True)
    with pytest.raises(ValueError, match="post-copy is not allowed"):
        choose_technique([cost(Technique.POSTCOPY, 1, 1)], Objective(), bandwidth_mib_s=100, postcopy_allowed=False)


def test_a_wide_interval_has_to_win_by_more() -> None:
    narrow = MigrationCost(Technique.POSTCOPY, Interval(4000, 4100, 4200), Interval(1, 2, 3),
                           Interval(130, 132, 134), True, MODEL)
    wide = MigrationCost(Technique.PRECOPY_COMPRESS, Interval(1700, 2800, 6600), Interval(8, 28, 110),
                         Interval(55, 90, 213), True, MODEL)
    cautious = choose_technique([narrow, wide], Objective(), bandwidth_mib_s=32, postcopy_allowed=True)
    assert cautious.parameters.technique is Technique.POSTCOPY
    trusting = choose_technique([narrow, wide], Objective(), bandwidth_mib_s=32, postcopy_allowed=True,
                                rules=TechniqueRules(risk=0.0))
    assert trusting.parameters.technique is Technique.PRECOPY_COMPRESS
