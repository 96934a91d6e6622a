"""Executing recommendations as values, on an executor whose migrations end when the test says: one request per
move, runs in order (a move ending starts the next), retries, cancelling, the expiry check before each move, and
what a restart finds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from advisor.adapters.memory import CountingIds, MemoryStore
from advisor.domain.errors import FailedPrecondition, InvalidArgument
from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import Objective, PlanGoal, Vm
from advisor.domain.recommendation import (
    Decision,
    MoveEnded,
    MoveState,
    Recommendation,
    RecommendationState,
    StartMove,
)
from advisor.usecases.migrations import Migrations
from advisor.usecases.records import apply_event
from tests.unit.usecases.world import World, hosts, world

S = RecommendationState
M = MoveState


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("a", "b", "c"), [Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2), Vm("v3", "a", 2048, 1)])
    return w


def approved_drain(w: World) -> Recommendation:
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    assert len(plan.moves) == 3
    return w.review.decide(plan.id, Decision.APPROVE, "alice", "")


def states(w: World, rec_id: str) -> list[MoveState]:
    return [s.state for s in w.review.get(rec_id).statuses()]


def test_a_move_starts_once_whoever_asks_and_its_end_moves_the_vm(w: World) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    with pytest.raises(InvalidArgument, match="move_index: recommendation r1 has 1 move"):
        w.migrations.execute(rec.id, "alice", 1)
    first = w.migrations.execute(rec.id, "alice")
    assert w.migrations.execute(rec.id, "bob").operation_id == first.operation_id  # the same operation
    assert w.executor.submitted == [first.operation_id] and w.migrations.migrating_vms() == {"v1"}
    assert w.review.get(rec.id).state is S.EXECUTING
    w.executor.end(first.operation_id, Phase.SUCCEEDED)
    done = w.review.get(rec.id)
    assert done.state is S.SUCCEEDED and done.status(0).operation_id == first.operation_id
    assert w.inventory.vms()["v1"].host_id == rec.moves[0].target_host_id  # the inventory follows
    assert w.store.outcomes() == [w.migrations.operation(first.operation_id)]  # kept to learn from


@pytest.mark.parametrize("retry", [False, True])
def test_of_two_requests_racing_to_start_a_move_the_loser_gets_the_winners_operation(w: World, retry: bool) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    if retry:
        w.executor.end(w.migrations.execute(rec.id, "alice").operation_id, Phase.FAILED)

    class Racing:  # another request starts the move while this one checks it still holds
        def expire_if_stale(self, store: MemoryStore, rec: Recommendation, index: int) -> str | None:
            w.migrations.execute(rec.id, "bob", index, retry=retry)
            return None

    loser = Migrations(w.store, w.executor, w.clock, Racing(), CountingIds("lost"))
    started = loser.execute(rec.id, "alice", retry=retry)
    assert started.operation_id == w.executor.submitted[-1] and started.actor == "bob"
    assert w.review.get(rec.id).status(0).attempts == 1 + retry  # one start stored, not two


def test_a_vm_moves_once_at_a_time_whichever_recommendation_asks(w: World) -> None:
    first, second = (w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, who, "")
                     for who in ("alice", "bob"))
    w.migrations.execute(first.id, "alice")
    with pytest.raises(FailedPrecondition, match="VM v1 is being moved by another operation"):
        w.migrations.execute(second.id, "bob")
    assert len(w.executor.submitted) == 1
    assert w.review.get(second.id).state is S.APPROVED and states(w, second.id) == [M.WAITING]  # nothing stored


@pytest.mark.parametrize("handed_over", [True, False])
def test_a_move_another_request_is_still_handing_over_is_waited_for_not_unknown(w: World, handed_over: bool) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    apply_event(w.store, rec.id, StartMove(0, "theirs"), "bob", w.clock())  # stored, not submitted yet

    def meanwhile(seconds: float) -> None:  # the other request's hand-over ends, or fails
        if handed_over:
            w.executor.submit(rec.id, rec.moves[0], actor="bob", operation_id="theirs")
        else:
            apply_event(w.store, rec.id, MoveEnded(0, "theirs", Phase.FAILED), "advisor", w.clock())

    waiting = Migrations(w.store, w.executor, w.clock, w.freshness, sleep=meanwhile)
    if handed_over:
        assert waiting.execute(rec.id, "alice").operation_id == "theirs"
    else:
        with pytest.raises(FailedPrecondition, match="move 0 of recommendation r1 did not start as operation theirs "
                                                     r"\(failed\)"):
            waiting.execute(rec.id, "alice")


def test_a_run_starts_each_move_when_the_one_before_succeeded(w: World) -> None:
    plan = approved_drain(w)
    running = w.migrations.run(plan.id, "alice")
    assert running.run_requested_by == "alice" and states(w, plan.id) == [M.RUNNING, M.WAITING, M.WAITING]
    for i in range(3):
        assert len(w.executor.submitted) == i + 1  # one at a time, in the plan's order
        record = w.migrations.operation(w.executor.submitted[i])
        assert (record.move_index, record.actor) == (i, "alice")
        w.executor.end(record.operation_id, Phase.SUCCEEDED)
    assert w.review.get(plan.id).state is S.SUCCEEDED
    assert {v.host_id for v in w.inventory.vms().values()} <= {"b", "c"}


def test_a_run_whose_next_vm_another_recommendation_moves_now_expires_saying_so(w: World) -> None:
    plan = approved_drain(w)
    w.migrations.run(plan.id, "alice")
    vm = plan.moves[1].vm_id
    other = w.review.decide(w.advice.recommend_target(vm, Objective()).id, Decision.APPROVE, "bob", "")
    w.migrations.execute(other.id, "bob")
    w.executor.end(w.executor.submitted[0], Phase.SUCCEEDED)
    ended = w.review.get(plan.id)
    assert ended.state is S.EXPIRED and ended.expiry_reason == f"VM {vm} is being moved by another operation"
    assert states(w, plan.id) == [M.SUCCEEDED, M.DROPPED, M.DROPPED] and len(w.executor.submitted) == 2


def test_a_run_stops_at_a_failed_move_and_a_retry_is_a_new_attempt(w: World) -> None:
    plan = approved_drain(w)
    w.migrations.run(plan.id, "alice")
    w.executor.end(w.executor.submitted[0], Phase.FAILED)
    assert w.review.get(plan.id).state is S.FAILED and states(w, plan.id) == [M.FAILED, M.WAITING, M.WAITING]
    assert len(w.executor.submitted) == 1  # the run waits for a retry
    assert w.migrations.execute(plan.id, "bob").operation_id == w.executor.submitted[0]  # no retry asked
    second = w.migrations.execute(plan.id, "bob", retry=True)
    assert (second.attempt, second.operation_id != w.executor.submitted[0]) == (2, True)
    w.executor.end(second.operation_id, Phase.SUCCEEDED)
    assert states(w, plan.id) == [M.SUCCEEDED, M.RUNNING, M.WAITING]  # the run goes on
    history, _ = w.migrations.page(running=False)
    assert [r.operation_id for r in history][-2:] == [second.operation_id, w.executor.submitted[0]]


def test_cancelling_aborts_a_pre_copy_drops_what_waits_and_lets_a_post_copy_finish(w: World) -> None:
    plan = approved_drain(w)
    w.migrations.run(plan.id, "alice")
    with pytest.raises(InvalidArgument, match="reason: is required"):
        w.migrations.cancel(plan.id, "bob", "  ")
    assert states(w, plan.id)[0] is not M.ABORTED  # nothing cancelled without a reason
    cancelled = w.migrations.cancel(plan.id, "bob", "change freeze")
    assert cancelled.state is S.CANCELLED and states(w, plan.id) == [M.ABORTED, M.DROPPED, M.DROPPED]
    with pytest.raises(FailedPrecondition, match="nothing left to cancel"):
        w.migrations.cancel(plan.id, "bob", "again")

    again = approved_drain(w)
    w.migrations.run(again.id, "alice")
    w.executor.enter(w.executor.submitted[-1], Phase.POSTCOPY)
    cancelling = w.migrations.cancel(again.id, "bob", "change freeze")
    assert cancelling.cancel_requested and cancelling.state is not S.CANCELLED  # the post-copy finishes
    w.executor.end(w.executor.submitted[-1], Phase.SUCCEEDED)
    assert w.review.get(again.id).state is S.CANCELLED
    assert states(w, again.id) == [M.SUCCEEDED, M.DROPPED, M.DROPPED]
    assert len(w.executor.submitted) == 2  # the run did not go on


def test_a_cancel_while_a_move_is_handed_over_succeeds_and_the_move_is_aborted_as_it_starts(
        w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    submit, abort, aborted, cancelled = w.executor.submit, w.executor.abort, [], []

    def cancel_then_submit(*args: Any, **kwargs: Any) -> MigrationRecord:
        cancelled.append(w.migrations.cancel(rec.id, "bob", "change freeze"))  # stored started, not submitted
        return submit(*args, **kwargs)

    def recorded_abort(operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
        aborted.append((reason, actor))
        return abort(operation_id, reason, actor)

    monkeypatch.setattr(w.executor, "submit", cancel_then_submit)
    monkeypatch.setattr(w.executor, "abort", recorded_abort)
    assert w.migrations.execute(rec.id, "alice").phase is Phase.ABORTED
    assert cancelled[0].cancel_requested and set(aborted) == {("recommendation cancelled: change freeze", "bob")}
    assert w.review.get(rec.id).state is S.CANCELLED and states(w, rec.id) == [M.ABORTED]


def test_a_move_that_no_longer_holds_expires_at_execution_saying_why(w: World) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    target = rec.moves[0].target_host_id
    w.push(hosts("a", "b", "c", maintenance=target))
    with pytest.raises(FailedPrecondition, match=f"recommendation {rec.id} expired: target {target} would reject "
                                                 "v1 now: in maintenance"):
        w.migrations.execute(rec.id, "alice")
    expired = w.review.get(rec.id)
    assert expired.state is S.EXPIRED and expired.status(0).state is M.DROPPED and w.executor.submitted == []
    with pytest.raises(FailedPrecondition, match="is expired"):
        w.migrations.execute(rec.id, "alice")


def test_a_restart_fails_a_move_never_handed_over_and_finishes_one_that_ended_unheard(w: World) -> None:
    lost = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    apply_event(w.store, lost.id, StartMove(0, "lost-op"), "alice", w.clock())  # then the advisor died
    unheard = w.review.decide(w.advice.recommend_target("v2", Objective()).id, Decision.APPROVE, "alice", "")
    op = w.migrations.execute(unheard.id, "alice")
    w.store.save_migration(replace(op, phase=Phase.SUCCEEDED))  # ended while nobody listened

    restarted = world(store=w.store)
    restarted.migrations.reconcile()
    assert restarted.review.get(lost.id).state is S.FAILED
    assert restarted.review.get(unheard.id).state is S.SUCCEEDED
    retried = restarted.migrations.execute(lost.id, "alice", retry=True)
    assert retried.attempt == 2


def test_without_an_executor_nothing_runs_and_it_says_why(w: World) -> None:
    rec = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    off = Migrations(w.store, None, w.clock, w.freshness)
    for call in (lambda: off.execute(rec.id, "alice"), lambda: off.run(rec.id, "alice"),
                 lambda: off.operation("op1")):
        with pytest.raises(FailedPrecondition, match="execution is not enabled"):
            call()
    assert off.migrating_vms() == frozenset() and w.review.get(rec.id).state is S.APPROVED
