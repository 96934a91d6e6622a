"""The recommendation lifecycle as a table: state before, event, state after or the refusal's words."""

from __future__ import annotations

import pytest

from advisor.domain.migration import Phase
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.domain.recommendation import (
    Approve,
    Event,
    MovesEnded,
    Recommendation,
    RecommendationState,
    Refusal,
    Reject,
    StartMove,
    transition,
)

S = RecommendationState
COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))
MOVE = Move("v", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300), COST, ("why",))


def rec(state: RecommendationState, moves: int = 2) -> Recommendation:
    decided = {} if state is S.PENDING else {"decided_by": "alice", "decision_reason": "ok", "decided_at_s": 5.0}
    return Recommendation("r1", "rebalance", 1.0, (MOVE,) * moves, "summary", state, **decided)  # type: ignore[arg-type]


ENDED_ONE = MovesEnded({0: Phase.SUCCEEDED})
ENDED_ALL = MovesEnded({0: Phase.SUCCEEDED, 1: Phase.SUCCEEDED})
ENDED_FAILED = MovesEnded({0: Phase.SUCCEEDED, 1: Phase.FAILED})
ENDED_ABORTED = MovesEnded({0: Phase.ABORTED})
RUNNING = MovesEnded({0: Phase.SUCCEEDED, 1: Phase.PRECOPY})

TABLE: list[tuple[RecommendationState, Event, RecommendationState | str]] = [
    (S.PENDING, Approve("fine"), S.APPROVED),
    (S.PENDING, Reject("change freeze"), S.REJECTED),
    (S.APPROVED, Approve(), "only pending ones can be approved or rejected"),
    (S.APPROVED, Reject("late"), "only pending ones can be approved or rejected"),
    (S.REJECTED, Approve(), "only pending ones can be approved or rejected"),
    (S.EXECUTING, Reject("stop"), "only pending ones can be approved or rejected"),
    (S.PENDING, StartMove(0), "only approved ones are executed"),
    (S.REJECTED, StartMove(0), "only approved ones are executed"),
    (S.APPROVED, StartMove(0), S.EXECUTING),
    (S.EXECUTING, StartMove(1), S.EXECUTING),
    (S.SUCCEEDED, StartMove(0), S.SUCCEEDED),  # a retried request returns the operation it already has
    (S.FAILED, StartMove(1), S.FAILED),
    (S.EXECUTING, ENDED_ONE, S.EXECUTING),
    (S.EXECUTING, RUNNING, S.EXECUTING),
    (S.EXECUTING, ENDED_ALL, S.SUCCEEDED),
    (S.EXECUTING, ENDED_FAILED, S.FAILED),
    (S.EXECUTING, ENDED_ABORTED, S.FAILED),
    (S.SUCCEEDED, ENDED_ALL, S.SUCCEEDED),
    (S.PENDING, ENDED_ALL, "it has no migrations to end"),
    (S.REJECTED, ENDED_ALL, "it has no migrations to end"),
]


@pytest.mark.parametrize(("before", "event", "after"), TABLE)
def test_transition(before: RecommendationState, event: Event, after: RecommendationState | str) -> None:
    result = transition(rec(before), event, "bob", 42.0)
    if isinstance(after, RecommendationState):  # (a StrEnum: test it before str)
        assert isinstance(result, Recommendation) and result.state is after
    else:
        assert isinstance(result, Refusal) and after in result.reason
        assert f"recommendation r1 is {before}" in result.reason


def test_a_decision_records_who_why_and_when() -> None:
    approved = transition(rec(S.PENDING), Approve("looks good"), "bob", 42.0)
    assert isinstance(approved, Recommendation)
    assert (approved.decided_by, approved.decision_reason, approved.decided_at_s) == ("bob", "looks good", 42.0)
    refused = transition(approved, Reject("no"), "carol", 43.0)
    assert isinstance(refused, Refusal) and "(by bob)" in refused.reason


def test_execution_events_keep_the_decision() -> None:
    started = transition(rec(S.APPROVED), StartMove(0), "advisor", 50.0)
    assert isinstance(started, Recommendation)
    assert (started.decided_by, started.decided_at_s) == ("alice", 5.0)
