"""A recommendation of any size fits what standard gRPC clients accept; ListMoves has the rest."""

from __future__ import annotations

from advisor.api.convert import PAGE_BYTES, fitted
from advisor.api.v1 import advisor_pb2 as pb


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
