"""A recommendation of any size fits what standard gRPC clients accept; ListMoves has the rest."""

from __future__ import annotations

import pytest

from advisor.api.answers import fitted_recommendation
from advisor.api.convert import PAGE_BYTES, fitted, recommendation_to_pb
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.assessments import HostAssessment
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.domain.recommendation import MoveState, MoveStatus, Recommendation


def test_a_plan_of_thousands_of_moves_keeps_what_fits_and_says_how_many_there_are() -> None:
    moves = [pb.Move(vm_id=f"vm-{i:05d}", source_host_id="a", target_host_id="b", reasons=["x" * 400] * 3,
                     assessments=[pb.HostAssessment(host_id=f"h{k}", eligible=True) for k in range(4)])
             for i in range(5000)]
    msg = fitted(pb.Recommendation(id="r", moves=moves))
    assert msg.ByteSize() <= PAGE_BYTES < 4 << 20
    assert msg.moves_total == 5000 and 0 < len(msg.moves) < 5000
    assert [m.vm_id for m in msg.moves] == [f"vm-{i:05d}" for i in range(len(msg.moves))]  # the first, in order
    assert all(not m.assessments for m in msg.moves)
    small = fitted(pb.Recommendation(id="s", moves=moves[:3]))
    assert small.moves_total == 3 and len(small.moves) == 3 and len(small.moves[0].assessments) == 4


def _plan(n: int, reason_bytes: int, stored: bool) -> Recommendation:
    cost = MigrationCost(Technique.PRECOPY, Interval(1.0, 2.0, 3.0), Interval(1.0, 2.0, 3.0), Interval(1.0, 2.0, 3.0),
                         True, ModelRef("m", "1"))
    assessed = tuple(HostAssessment(f"h{k}", (), 0.5, 0.4, 0.3) for k in range(4))
    moves = tuple(Move(f"vm-{i:05d}", "a", "b", MigrationParameters(Technique.PRECOPY, 100.0, 300.0), cost,
                       ("x" * (reason_bytes + i % 7),), assessed, (("cpu", 3, "h9"),), 12) for i in range(n))
    return Recommendation("r" if stored else "", "rebalance", 0.0, moves, "summary",
                          move_status=(MoveStatus(MoveState.RUNNING),) if stored else ())


@pytest.mark.parametrize("stored", [True, False])
def test_planclusters_answer_converts_only_what_fits_yet_equals_the_whole_fitted(stored: bool) -> None:
    """Byte for byte `fitted(recommendation_to_pb(...))`: plans that fit whole, plans just past the page (every
    count around it) and far past it, moves of a few reasons and of a large one, and no move."""
    one = len(recommendation_to_pb(_plan(1, 1000, stored)).moves[0].SerializeToString())
    near = PAGE_BYTES // (one + 3)  # about this many moves of 1,000 bytes of reasons fill the page whole
    whole = set()
    for n, size in [(3, 1000), *((k, 1000) for k in range(near - 8, near + 3)), (5000, 1000), (400, 8000), (0, 0)]:
        plan = _plan(n, size, stored)
        expected = fitted(recommendation_to_pb(plan))
        assert fitted_recommendation(plan).SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True), (n, size)
        if abs(n - near) <= 8:
            whole.add(len(expected.moves) == n and all(m.assessments for m in expected.moves))
    assert whole == {True, False}  # the page's edge was crossed
