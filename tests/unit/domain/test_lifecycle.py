"""The recommendation lifecycle as a table: state and move states before, event, state after or the refusal's
words; then the plan's state derived from its moves, and the history of who did what."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.domain.migration import Phase
from advisor.domain.model import MigrationParameters, Move, Technique
from advisor.domain.recommendation import (
    Approve,
    Cancel,
    Event,
    Expire,
    MoveEnded,
    MoveState,
    MoveStatus,
    Recommendation,
    RecommendationState,
    Refusal,
    Reject,
    RunAll,
    StartMove,
    StateChange,
    Supersede,
    derive_state,
    transition,
)
from tests.support.values import COST

S = RecommendationState
M = MoveState
MOVE = Move("v", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300), COST, ("why",))


def status(state: MoveState, op: str = "") -> MoveStatus:
    return MoveStatus(state, 0 if state in (M.WAITING, M.DROPPED) else 1, op or ("" if state is M.WAITING else "op"))


def rec(state: RecommendationState, *moves: MoveState, cancel: bool = False) -> Recommendation:
    decided = {} if state is S.PROPOSED else {"decided_by": "alice", "decision_reason": "ok", "decided_at_s": 5.0}
    moves = moves or (M.WAITING, M.WAITING)
    return Recommendation("r1", "rebalance", 1.0, (MOVE,) * len(moves), "summary", state,
                          move_status=tuple(status(m, f"op{i}") if m is not M.WAITING else status(m)
                                            for i, m in enumerate(moves)),
                          cancel_requested=cancel, **decided)  # type: ignore[arg-type]


W, R, OK, F, A = M.WAITING, M.RUNNING, M.SUCCEEDED, M.FAILED, M.ABORTED
# (state, its moves, event, state after (and the moves after) or the words of the refusal)
TABLE: list[tuple[RecommendationState, tuple[MoveState, ...], Event, object]] = [
    (S.PROPOSED, (W, W), Approve("fine"), S.APPROVED),
    (S.PROPOSED, (W, W), Reject("change freeze"), (S.REJECTED, (M.DROPPED, M.DROPPED))),  # never to start
    (S.APPROVED, (W, W), Approve(), "only proposed ones can be approved or rejected"),
    (S.EXECUTING, (R, W), Reject("stop"), "only proposed ones can be approved or rejected"),
    (S.PROPOSED, (W, W), StartMove(0, "x"), "approve it first"),
    (S.REJECTED, (W, W), StartMove(0, "x"), "its moves can no longer start"),
    (S.EXPIRED, (M.DROPPED,), StartMove(0, "x"), "its moves can no longer start"),
    (S.APPROVED, (W, W), StartMove(0, "x"), (S.EXECUTING, (R, W))),
    (S.EXECUTING, (OK, W), StartMove(1, "x"), (S.EXECUTING, (OK, R))),
    (S.EXECUTING, (R, W), StartMove(0, "x"), "is running (operation op0)"),
    (S.EXECUTING, (R, W), StartMove(0, "op0"), (S.EXECUTING, (R, W))),  # the same start again: no change
    (S.SUCCEEDED, (OK, OK), StartMove(0, "x"), "its moves can no longer start"),
    (S.FAILED, (OK, F), StartMove(1, "x"), "retry it to start a new attempt"),
    (S.FAILED, (OK, F), StartMove(1, "x", retry=True), (S.EXECUTING, (OK, R))),
    (S.ABORTED, (A, W), StartMove(0, "x", retry=True), (S.EXECUTING, (R, W))),
    (S.FAILED, (F, W), StartMove(1, "x"), (S.EXECUTING, (F, R))),  # the other moves may still run
    (S.EXECUTING, (OK, W), StartMove(0, "x", retry=True), "only a failed or aborted move is retried"),
    (S.EXECUTING, (R, W), StartMove(2, "x"), "has 2 moves, no move 2"),
    (S.EXECUTING, (R, W), MoveEnded(0, "op0", Phase.SUCCEEDED), (S.EXECUTING, (OK, W))),
    (S.EXECUTING, (OK, R), MoveEnded(1, "op1", Phase.SUCCEEDED), (S.SUCCEEDED, (OK, OK))),
    (S.EXECUTING, (OK, R), MoveEnded(1, "op1", Phase.FAILED), (S.FAILED, (OK, F))),
    (S.EXECUTING, (OK, R), MoveEnded(1, "op1", Phase.ABORTED), (S.ABORTED, (OK, A))),
    (S.EXECUTING, (R, R), MoveEnded(0, "op0", Phase.FAILED), (S.EXECUTING, (F, R))),  # one still runs
    (S.EXECUTING, (R, W), MoveEnded(0, "an-older-attempt", Phase.FAILED), (S.EXECUTING, (R, W))),
    (S.EXECUTING, (R, W), MoveEnded(0, "op0", Phase.PRECOPY), "has not ended"),
    (S.PROPOSED, (W, W), Expire("too old"), (S.EXPIRED, (M.DROPPED, M.DROPPED))),
    (S.APPROVED, (W, W), Expire("VM gone"), (S.EXPIRED, (M.DROPPED, M.DROPPED))),
    (S.EXECUTING, (OK, W), Expire("target full"), (S.EXPIRED, (OK, M.DROPPED))),
    (S.EXECUTING, (R, W), Expire("x"), "only a recommendation waiting to run"),
    (S.SUCCEEDED, (OK, OK), Expire("x"), "only a recommendation waiting to run"),
    (S.PROPOSED, (W, W), Cancel("not now"), (S.CANCELLED, (M.DROPPED, M.DROPPED))),
    (S.EXECUTING, (OK, W), Cancel("stop the drain"), (S.CANCELLED, (OK, M.DROPPED))),
    (S.FAILED, (F, W), Cancel("give up"), (S.CANCELLED, (F, M.DROPPED))),
    (S.EXECUTING, (R, W), Cancel("stop"), (S.EXECUTING, (R, W))),  # the running move ends first
    (S.SUCCEEDED, (OK, OK), Cancel("x"), "nothing left to cancel"),
    (S.REJECTED, (W, W), Cancel("x"), "nothing left to cancel"),
    (S.APPROVED, (W, W), RunAll(), (S.APPROVED, (W, W))),
    (S.PROPOSED, (W, W), RunAll(), "approve it first"),
    (S.PROPOSED, (W, W), Supersede("r2"), (S.SUPERSEDED, (M.DROPPED, M.DROPPED))),
    (S.PROPOSED, (W, W), Supersede("r1"), "cannot supersede itself"),
    (S.APPROVED, (W, W), Supersede("r2"), "only a proposed recommendation is superseded"),
    (S.EXECUTING, (R, W), Supersede("r2"), "only a proposed recommendation is superseded"),
    (S.REJECTED, (W, W), Supersede("r2"), "only a proposed recommendation is superseded"),
    (S.SUPERSEDED, (M.DROPPED, M.DROPPED), Supersede("r3"), "only a proposed recommendation is superseded"),
    (S.SUPERSEDED, (M.DROPPED, M.DROPPED), Approve(), "only proposed ones can be approved or rejected"),
    (S.SUPERSEDED, (M.DROPPED, M.DROPPED), StartMove(0, "x"), "its moves can no longer start"),
    (S.SUPERSEDED, (M.DROPPED, M.DROPPED), Expire("x"), "only a recommendation waiting to run"),
    (S.SUPERSEDED, (M.DROPPED, M.DROPPED), Cancel("x"), "nothing left to cancel"),
]


@pytest.mark.parametrize(("before", "moves", "event", "after"), TABLE)
def test_transition(before: RecommendationState, moves: tuple[MoveState, ...], event: Event, after: object) -> None:
    result = transition(rec(before, *moves), event, "bob", 42.0)
    if isinstance(after, str) and not isinstance(after, RecommendationState):
        assert isinstance(result, Refusal), result
        assert after in result.reason
    else:
        state, expected_moves = after if isinstance(after, tuple) else (after, moves)
        assert isinstance(result, Recommendation), result
        assert result.state is state
        assert tuple(s.state for s in result.statuses()) == expected_moves


def test_a_cancel_while_a_move_runs_ends_cancelled_when_it_ends() -> None:
    cancelling = transition(rec(S.EXECUTING, R, W), Cancel("stop"), "bob", 42.0)
    assert isinstance(cancelling, Recommendation) and cancelling.cancel_requested
    assert isinstance(transition(cancelling, StartMove(1, "x"), "bob", 43.0), Refusal)  # nothing new starts
    ended = transition(cancelling, MoveEnded(0, "op0", Phase.ABORTED), "advisor", 44.0)
    assert isinstance(ended, Recommendation)
    assert ended.state is S.CANCELLED
    assert [s.state for s in ended.statuses()] == [A, M.DROPPED]


def test_a_retry_counts_attempts_and_follows_the_new_operation() -> None:
    failed = rec(S.FAILED, F)
    retried = transition(failed, StartMove(0, "op-2", retry=True), "bob", 50.0)
    assert isinstance(retried, Recommendation)
    assert retried.status(0) == MoveStatus(R, 2, "op-2")
    late = transition(retried, MoveEnded(0, "op0", Phase.FAILED), "advisor", 51.0)  # the old attempt: ignored
    assert late == retried
    done = transition(retried, MoveEnded(0, "op-2", Phase.SUCCEEDED), "advisor", 52.0)
    assert isinstance(done, Recommendation) and done.state is S.SUCCEEDED


@pytest.mark.parametrize(("moves", "cancel", "state"), [
    ((OK, OK), False, S.SUCCEEDED),
    ((OK, F), False, S.FAILED),
    ((A, OK), False, S.ABORTED),
    ((A, F), False, S.FAILED),  # a failure outweighs an abort
    ((OK, W), False, S.EXECUTING),
    ((R, F), False, S.EXECUTING),
    ((OK, M.DROPPED), True, S.CANCELLED),
    ((), False, S.EXECUTING),
])
def test_the_plan_state_is_true_to_its_moves(moves: tuple[MoveState, ...], cancel: bool,
                                             state: RecommendationState) -> None:
    assert derive_state(tuple(MoveStatus(m) for m in moves), cancel) is state
    if F in moves:
        assert state is not S.SUCCEEDED


def test_a_decision_records_who_why_and_when_and_the_history_every_step() -> None:
    approved = transition(rec(S.PROPOSED), Approve("looks good"), "bob", 42.0)
    assert isinstance(approved, Recommendation)
    assert (approved.decided_by, approved.decision_reason, approved.decided_at_s) == ("bob", "looks good", 42.0)
    refused = transition(approved, Reject("no"), "carol", 43.0)
    assert isinstance(refused, Refusal) and "(by bob)" in refused.reason
    started = transition(approved, StartMove(0, "op-a"), "carol", 44.0)
    assert isinstance(started, Recommendation)
    assert (started.decided_by, started.decided_at_s) == ("bob", 42.0)  # execution keeps the decision
    assert [(h.state, h.actor, h.at_s) for h in started.history] == [(S.APPROVED, "bob", 42.0),
                                                                       (S.EXECUTING, "carol", 44.0)]
    assert "op-a" in started.history[-1].reason


def test_a_recommendation_without_moves_cannot_be_approved() -> None:
    empty = replace(rec(S.PROPOSED), moves=(), move_status=())
    refused = transition(empty, Approve(), "bob", 1.0)
    assert isinstance(refused, Refusal) and "nothing to approve" in refused.reason
    assert isinstance(transition(empty, Reject("no"), "bob", 1.0), Recommendation)


def test_stored_before_moves_had_states_means_every_move_waiting() -> None:
    old = replace(rec(S.APPROVED), move_status=())
    assert [s.state for s in old.statuses()] == [W, W]
    assert S.parse("pending") is S.PROPOSED


def test_a_superseded_recommendation_names_what_superseded_it() -> None:
    superseded = transition(rec(S.PROPOSED, W), Supersede("r2"), "advisor", 42.0)
    assert isinstance(superseded, Recommendation)
    assert superseded.superseded_by == "r2"
    assert superseded.history[-1] == StateChange(42.0, S.SUPERSEDED, "advisor", "superseded by r2")
