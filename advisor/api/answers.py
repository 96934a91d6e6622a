"""A recommendation as PlanCluster answers it: `convert.fitted(convert.recommendation_to_pb(r))`, converting only
the moves that fit when not all do (a rebalance of 5,000 moves answers with about 1,700: converting the others with
their host assessments, to learn that they do not fit, took 0.13 s of a call)."""

from __future__ import annotations

import itertools

from advisor.api.convert import PAGE_BYTES, fill_moves, moves_to_pb, recommendation_head
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.recommendation import Recommendation


def fitted_recommendation(r: Recommendation, *, with_assessments: bool = True) -> pb.Recommendation:
    """The whole is sized move by move as protobuf adds it up (each move a tag, its length and itself); once past
    the page, the moves that fit are those `fitted` keeps, the rest converted without their assessments."""
    msg = recommendation_head(r)
    msg.moves_total = len(r.moves)
    size, moves = msg.ByteSize(), []
    for move in moves_to_pb(r, with_assessments=with_assessments):
        moves.append(move)
        n = move.ByteSize()
        size += _varint_size(pb.Recommendation.MOVES_FIELD_NUMBER << 3) + _varint_size(n) + n
        if size > PAGE_BYTES:
            rest = moves_to_pb(r, with_assessments=False, first=len(moves))
            return fill_moves(msg, itertools.chain(moves, rest))
    msg.moves.extend(moves)
    return msg


def _varint_size(n: int) -> int:
    """Bytes of `n` as a protobuf varint."""
    return max(1, (n.bit_length() + 6) // 7)
