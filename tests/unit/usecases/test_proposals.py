"""A plan's summary names the open recommendations already moving its VMs, counted in exact words."""

from __future__ import annotations

from advisor.domain.model import Move
from advisor.domain.recommendation import Recommendation
from advisor.usecases.proposals import overlap_summary
from tests.support.values import COST, PARAMETERS


def _move(vm: str) -> Move:
    return Move(vm, "a", "b", PARAMETERS, COST, ("why",))


def test_the_overlap_is_counted_in_exact_singular_and_plural() -> None:
    other = Recommendation("r9", "target:v1", 1.0, (_move("v1"),), "one")
    moves = (_move("v1"), _move("v2"), _move("v3"))
    assert overlap_summary(moves, {}) == ""
    one = overlap_summary(moves, {"v1": [other]})
    assert one.startswith(" 1 VM of this plan is also moved by other open recommendations, e.g. v1 by ")
    two = overlap_summary(moves, {"v1": [other], "v3": [other]})
    assert two.startswith(" 2 VMs of this plan are also moved by other open recommendations, e.g. v1 by ")
    assert "(s)" not in one + two
