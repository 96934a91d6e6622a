"""The technique policy: cheapest technique meeting every limit, else the least bad one, with reasons."""

from __future__ import annotations

import pytest

from advisor.domain.model import Interval, MigrationCost, ModelRef, Objective, Technique
from advisor.planning.postcopy_price import postcopy_exposure_ms, postcopy_harm_ms, postcopy_slowdown
from advisor.planning.technique import (
    TechniqueRules,
    choose_technique,
)

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


@pytest.mark.parametrize(("remaining", "dirty", "bandwidth", "exposure_ms", "slowdown"), [
    (4096.0, 8.0, 128.0, 32_000.0, 0.0625),  # nearly idle: long exposure, little slowdown
    (512.0, 64.0, 128.0, 4_000.0, 0.5),  # busy: half its time faulting
    (1024.0, 500.0, 100.0, 10_240.0, 1.0),  # touching memory faster than the link brings it: stalled throughout
], ids=["idle", "busy", "faster than the link"])
def test_postcopy_exposure_and_slowdown(remaining: float, dirty: float, bandwidth: float, exposure_ms: float,
                                        slowdown: float) -> None:
    assert postcopy_exposure_ms(remaining, bandwidth) == pytest.approx(exposure_ms)
    assert postcopy_slowdown(dirty, bandwidth) == pytest.approx(slowdown)
    assert postcopy_harm_ms(exposure_ms, slowdown, 0.05) == pytest.approx(exposure_ms * (slowdown + 0.05))


def idle_vm_costs(precopy_downtime_ms: float, *, converges: bool = True) -> list[MigrationCost]:
    """A 4 GiB VM dirtying 8 MiB/s over 128 MiB/s: pre-copy's p90 downtime is 1.5 x `precopy_downtime_ms`."""
    post = MigrationCost(Technique.POSTCOPY, Interval(32_000, 33_000, 36_000), Interval(1, 2, 3),
                         Interval(4096, 4096, 4200), True, MODEL)
    return [cost(Technique.PRECOPY, 35_000, precopy_downtime_ms, converges=converges), post]


@pytest.mark.parametrize(("downtime", "converges", "rules", "chosen", "named"), [
    # p90 375 ms > 300: 75 ms over, far below post-copy's harm of 33 s exposed with a 6% slowdown
    (250.0, True, TechniqueRules(), Technique.PRECOPY, "less than post-copy's harm"),
    # a pre-copy that does not converge leaves post-copy
    (250.0, False, TechniqueRules(), Technique.POSTCOPY, "among techniques meeting every limit"),
    # a pause seconds over the limit is worse than the slowdown and exposure
    (3_000.0, True, TechniqueRules(), Technique.POSTCOPY, "more than post-copy's harm"),
    # an SRE who weighs exposure at nothing still does not trade 75 ms for a 6% slowdown over 33 s
    (250.0, True, TechniqueRules(postcopy_exposure_weight=0.0), Technique.PRECOPY, "less than post-copy's harm"),
], ids=["idle: pre-copy", "no convergence: post-copy", "far over: post-copy", "exposure free"])
def test_postcopy_is_weighed_against_precopys_downtime_risk(downtime: float, converges: bool, rules: TechniqueRules,
                                                            chosen: Technique, named: str) -> None:
    choice = choose_technique(idle_vm_costs(downtime, converges=converges), Objective(max_downtime_ms=300),
                              bandwidth_mib_s=128, postcopy_allowed=True, rules=rules, dirty_rate_mib_s=8.0)
    assert choice.parameters.technique is chosen
    assert any(named in r for r in choice.reasons)
    priced = [r for r in choice.reasons if r.startswith("post-copy priced")]
    assert priced and "exposed 32.0 s" in priced[0] and "slowed 6%" in priced[0]


def test_a_nearly_idle_4_gib_vm_is_not_moved_by_postcopy_for_a_predicted_downtime_over_300_ms() -> None:
    choice = choose_technique(idle_vm_costs(250.0), Objective(max_downtime_ms=300), bandwidth_mib_s=128,
                              postcopy_allowed=True, dirty_rate_mib_s=8.0)
    assert choice.parameters.technique is Technique.PRECOPY
    assert any("QEMU's stop rule" in r for r in choice.reasons)


@pytest.mark.parametrize(("labels", "cluster", "rules", "reason"), [
    ({"advisor.postcopy": "forbidden"}, "east", TechniqueRules(),
     "post-copy forbidden by the VM's label advisor.postcopy=forbidden"),
    ({}, "east", TechniqueRules(postcopy_forbidden_clusters=frozenset({"east"})),
     "post-copy forbidden in cluster east (setting technique_postcopy_forbidden_clusters)"),
], ids=["VM label", "cluster"])
def test_an_sre_forbids_postcopy_and_the_reason_says_so(labels: dict[str, str], cluster: str, rules: TechniqueRules,
                                                         reason: str) -> None:
    forbidden = rules.postcopy_forbidden(labels, cluster)
    choice = choose_technique(idle_vm_costs(250.0, converges=False), Objective(max_downtime_ms=300),
                              bandwidth_mib_s=128, postcopy_allowed=True, rules=rules, dirty_rate_mib_s=8.0,
                              postcopy_forbidden=forbidden)
    assert choice.parameters.technique is Technique.PRECOPY
    assert choice.parameters.postcopy_after_ms is None
    assert reason in choice.reasons
    assert TechniqueRules().postcopy_forbidden({"advisor.postcopy": "allowed"}, cluster) == ""


def _why_not(choice_reasons: tuple[str, ...], technique: Technique) -> str:
    said = [r for r in choice_reasons if r.startswith(f"not {technique} ") or r.startswith(f"not {technique}:")]
    assert len(said) == 1, choice_reasons
    return said[0].split("): ", 1)[-1] if "): " in said[0] else said[0].split(": ", 1)[-1]


def test_a_technique_passed_over_is_told_why_in_the_terms_of_the_choice() -> None:
    precopy, slow = cost(Technique.PRECOPY, 10_000, 100), cost(Technique.PRECOPY_XBZRLE, 14_000, 100)
    wide = MigrationCost(Technique.PRECOPY_COMPRESS, Interval(1_000, 9_000, 40_000), Interval(50, 100, 150),
                         Interval(300, 400, 500), True, MODEL)
    objective = Objective(max_downtime_ms=300)
    choice = choose_technique([precopy, slow, wide], objective, bandwidth_mib_s=100, postcopy_allowed=False)
    assert choice.parameters.technique is Technique.PRECOPY
    assert _why_not(choice.reasons, Technique.PRECOPY_XBZRLE) == "slower: 14.0 [12.6-16.8] s against 10.0 [9.0-12.0]"
    assert _why_not(choice.reasons, Technique.PRECOPY_COMPRESS).startswith("less certain")  # a faster median
    # by bytes: what it sends, never "slower"
    by_bytes = choose_technique([precopy, wide], Objective(max_downtime_ms=300, minimize_transferred=True),
                                bandwidth_mib_s=100, postcopy_allowed=False)
    assert _why_not(by_bytes.reasons, Technique.PRECOPY).startswith("sends more: 1100.0 [1000.0-1300.0] MiB")


def test_a_faster_postcopy_passed_over_for_its_price_is_not_called_slower() -> None:
    # 8 GiB at 100 MiB/s: 82 s of exposure, priced above the 4 s it would save
    precopy = cost(Technique.PRECOPY_AUTOCONVERGE, 94_000, 100)
    post = MigrationCost(Technique.POSTCOPY, Interval(65_000, 66_000, 67_000), Interval(1, 2, 8),
                         Interval(7800, 7900, 8000), True, MODEL)
    choice = choose_technique([precopy, post], Objective(max_downtime_ms=300), bandwidth_mib_s=100,
                              postcopy_allowed=True, dirty_rate_mib_s=10.0,
                              rules=TechniqueRules(postcopy_exposure_weight=1.0))
    assert choice.parameters.technique is Technique.PRECOPY_AUTOCONVERGE
    assert _why_not(choice.reasons, Technique.POSTCOPY) == "its risk, priced below, outweighs what it saves"
    assert any(r.startswith("post-copy priced at") for r in choice.reasons)
