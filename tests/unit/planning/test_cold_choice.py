"""Cold migration in the technique policy: chosen only when asked for, or when it meets every limit and no live
technique does; otherwise listed with why not. The live choice is the same with or without a cold cost beside it."""

from __future__ import annotations

import pytest

from advisor.domain.model import Interval, MigrationCost, ModelRef, Objective, Technique
from advisor.planning.technique import TechniqueRules, choose_technique

MODEL = ModelRef("test", "0")


def cost(technique: Technique, time_ms: float, downtime_ms: float, *, converges: bool = True) -> MigrationCost:
    return MigrationCost(technique, Interval(time_ms * 0.9, time_ms, time_ms * 1.2),
                         Interval(downtime_ms * 0.5, downtime_ms, downtime_ms * 1.5), Interval(1, 2, 3),
                         converges, MODEL)


COLD = cost(Technique.COLD, 12_000, 11_000)  # downtime up to 16.5 s, done within 14.4 s
CALM = [cost(Technique.PRECOPY, 10_000, 100), cost(Technique.POSTCOPY, 12_000, 2)]
STUCK = [cost(Technique.PRECOPY, 90_000, 900, converges=False),
         cost(Technique.PRECOPY_AUTOCONVERGE, 80_000, 40_000)]  # p90 downtime 60 s
LABEL = "asked for by the VM's label advisor.technique=cold"


@pytest.mark.parametrize(("live", "objective", "postcopy", "asked", "chosen", "why"), [
    # a live technique meets every limit: cold is listed with the limit it breaks, not chosen
    (CALM, Objective(max_downtime_ms=300), True, "", Technique.PRECOPY,
     "not cold: total 12000 ms [10800-14400], downtime 11000 ms [5500-16500], 2 MiB (test 0): downtime up to "
     "16500 ms > limit 300 ms"),
    # ... and where it would meet them too, since the guest is off for the whole move
    (CALM, Objective(max_downtime_ms=20_000), True, "", Technique.PRECOPY,
     "a live technique meets every limit (cold stops the guest for the whole move)"),
    # no live technique meets the limits (post-copy forbidden) and cold breaks them too: the live fallback
    (STUCK, Objective(max_downtime_ms=300), False, "", Technique.PRECOPY_AUTOCONVERGE,
     "downtime up to 16500 ms > limit 300 ms"),
    # a generous limit that only cold meets: cold, saying why
    (STUCK, Objective(max_downtime_ms=20_000), False, "", Technique.COLD,
     "it meets every limit and no live technique does"),
    # ... but not past a deadline it cannot keep
    (STUCK, Objective(max_downtime_ms=20_000, deadline_ms=10_000), False, "", Technique.PRECOPY_AUTOCONVERGE,
     "total time up to 14400 ms > deadline 10000 ms"),
    # post-copy meets the limits: it stays live
    ([*STUCK, cost(Technique.POSTCOPY, 30_000, 2)], Objective(max_downtime_ms=20_000), True, "",
     Technique.POSTCOPY, "a live technique meets every limit"),
    # asked for: cold, whatever the limits, with what each live technique would have done
    (CALM, Objective(max_downtime_ms=300), True, LABEL, Technique.COLD, f"{LABEL} (whatever the limits)"),
])
def test_cold_is_chosen_only_when_asked_or_alone_in_meeting_the_limits(
        live: list[MigrationCost], objective: Objective, postcopy: bool, asked: str, chosen: Technique,
        why: str) -> None:
    choice = choose_technique([*live, COLD], objective, bandwidth_mib_s=100, postcopy_allowed=postcopy,
                              cold_asked=asked)
    assert choice.parameters.technique is chosen
    assert any(why in r for r in choice.reasons), choice.reasons
    if chosen is not Technique.COLD:
        # the live choice is exactly what it is without cold, plus the line on cold
        alone = choose_technique(live, objective, bandwidth_mib_s=100, postcopy_allowed=postcopy)
        assert choice.parameters == alone.parameters
        assert choice.reasons[:-1] == alone.reasons and choice.reasons[-1].startswith("not cold: ")


def test_a_cold_choice_shuts_down_within_the_rules_timeout_and_never_switches_to_post_copy() -> None:
    rules = TechniqueRules(cold_shutdown_timeout_ms=15_000)
    choice = choose_technique([*STUCK, COLD], Objective(max_downtime_ms=20_000), bandwidth_mib_s=100,
                              postcopy_allowed=True, rules=rules)
    p = choice.parameters
    assert p.technique is Technique.COLD and choice.cost is COLD
    assert p.shutdown_timeout_ms == 15_000 and p.postcopy_after_ms is None and p.compression_threads == 0
    assert p.max_downtime_ms == 20_000 and p.deadline_ms == 0
    assert choice.reasons[0].startswith("chose cold: ")
    assert any(r.startswith("not precopy_autoconverge: ") and "60000 ms > limit" in r for r in choice.reasons)


def test_the_vm_label_asks_for_cold() -> None:
    rules = TechniqueRules()
    assert rules.cold_asked({"advisor.technique": "cold"}) == LABEL
    assert rules.cold_asked({"advisor.technique": "precopy"}) == ""
    assert rules.cold_asked({}) == ""


def test_asked_for_cold_where_it_is_not_allowed_is_a_clear_error() -> None:
    rules = TechniqueRules(techniques=(Technique.PRECOPY, Technique.POSTCOPY))
    with pytest.raises(ValueError, match="the rules do not allow cold"):
        choose_technique([*CALM, COLD], Objective(), bandwidth_mib_s=100, postcopy_allowed=True, rules=rules,
                         cold_asked=LABEL)
    # not asked: cold not allowed is simply not considered
    choice = choose_technique([*CALM, COLD], Objective(), bandwidth_mib_s=100, postcopy_allowed=True, rules=rules)
    assert choice.parameters.technique is Technique.PRECOPY and not any("cold" in r for r in choice.reasons)


def test_cold_alone_is_chosen_when_no_live_technique_may_be_used() -> None:
    choice = choose_technique([cost(Technique.POSTCOPY, 5_000, 2), COLD], Objective(), bandwidth_mib_s=100,
                              postcopy_allowed=False)
    assert choice.parameters.technique is Technique.COLD
    assert "the only technique allowed and predicted" in choice.reasons[0]
