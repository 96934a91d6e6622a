"""Reviewing recommendations as values: decisions checked then stored, the expiry check before an approval, the
compare-and-set that lets exactly one of many concurrent deciders win, and the paged listings."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from advisor.adapters.memory import MemoryStore
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.model import Objective, Vm
from advisor.domain.recommendation import Decision, Recommendation, RecommendationState
from advisor.usecases.lifecycle import expire_stale
from advisor.usecases.priority import Priority
from tests.unit.usecases.world import World, hosts, world

S = RecommendationState


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("a", "b", "c", "d"), [Vm(f"v{i}", "a", 4096, 2) for i in range(5)])
    return w


def proposed(w: World, vm_id: str = "v0") -> Recommendation:
    rec = w.advice.recommend_target(vm_id, Objective())
    assert rec.state is S.PROPOSED
    return rec


def decisions(w: World, decision: Decision) -> float:
    value = w.metrics.registry.get_sample_value("advisor_recommendation_decisions_total", {"decision": decision})
    return value or 0.0


def test_decisions_are_checked_then_stored_with_who_and_when(w: World) -> None:
    rec = proposed(w)
    with pytest.raises(InvalidArgument, match="actor: is required"):
        w.review.decide(rec.id, Decision.APPROVE, " ", "")
    with pytest.raises(InvalidArgument, match="reason: is required to reject"):
        w.review.decide(rec.id, Decision.REJECT, "bob", " ")
    with pytest.raises(NotFound, match="unknown recommendation 'nope'"):
        w.review.decide("nope", Decision.APPROVE, "bob", "")
    w.clock.advance(60)
    approved = w.review.decide(rec.id, Decision.APPROVE, "bob", "fine")
    assert (approved.state, approved.decided_by, approved.revision) == (S.APPROVED, "bob", 1)
    assert approved.history[-1].at_s == w.clock() and approved.history[-1].reason == "fine"
    assert w.review.get(rec.id) == approved
    with pytest.raises(FailedPrecondition, match=r"is approved \(by bob\)"):
        w.review.decide(rec.id, Decision.REJECT, "carol", "no")
    assert (decisions(w, Decision.APPROVE), decisions(w, Decision.REJECT)) == (1, 0)


def test_a_rejection_keeps_its_reason(w: World) -> None:
    rec = proposed(w)
    rejected = w.review.decide(rec.id, Decision.REJECT, "carol", "web tier frozen")
    assert (rejected.state, rejected.decided_by, rejected.history[-1].reason) == (S.REJECTED, "carol",
                                                                                  "web tier frozen")
    assert decisions(w, Decision.REJECT) == 1


def test_an_approval_of_a_recommendation_that_no_longer_holds_expires_it_saying_why(w: World) -> None:
    rec = proposed(w)
    target = rec.moves[0].target_host_id
    w.push(hosts("a", "b", "c", "d", maintenance=target))
    with pytest.raises(FailedPrecondition, match=f"recommendation {rec.id} expired: target {target} would reject "
                                                 "v0 now: in maintenance"):
        w.review.decide(rec.id, Decision.APPROVE, "alice", "")
    expired = w.review.get(rec.id)
    assert expired.state is S.EXPIRED and "in maintenance" in expired.expiry_reason
    assert decisions(w, Decision.APPROVE) == 0


def test_a_rejection_needs_no_expiry_check(w: World) -> None:
    rec = proposed(w)
    w.push(vms=[Vm("v0", "c", 4096, 2)])  # moved by someone else: no longer holds
    assert w.review.decide(rec.id, Decision.REJECT, "alice", "moved by hand").state is S.REJECTED


class Interleaved(MemoryStore):
    """A store where, right before the first write, another reviewer's decision lands first."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], object] | None = None

    def replace_recommendation(self, before: Recommendation, after: Recommendation) -> Recommendation | None:
        if self.meanwhile is not None:
            first, self.meanwhile = self.meanwhile, None
            first()
        return super().replace_recommendation(before, after)


def test_the_decider_who_read_first_but_wrote_second_is_told_what_happened() -> None:
    store = Interleaved()
    w = world(store=store)
    w.push(hosts("a", "b"), [Vm("v0", "a", 4096, 2)])
    rec = proposed(w)
    store.meanwhile = lambda: w.review.decide(rec.id, Decision.REJECT, "carol", "frozen")
    with pytest.raises(FailedPrecondition, match=r"is rejected \(by carol\)"):
        w.review.decide(rec.id, Decision.APPROVE, "bob", "")
    stored = w.review.get(rec.id)
    assert (stored.state, stored.decided_by, stored.revision) == (S.REJECTED, "carol", 1)


def test_of_many_concurrent_deciders_exactly_one_wins(w: World) -> None:
    recs = [proposed(w, f"v{i}").id for i in range(5)]
    winners: dict[str, list[str]] = {r: [] for r in recs}
    start = threading.Barrier(6)

    def decider(n: int) -> None:
        start.wait()
        for rec_id, won in winners.items():
            try:
                w.review.decide(rec_id, Decision.APPROVE if n % 2 == 0 else Decision.REJECT, f"sre{n}", "reason")
                won.append(f"sre{n}")
            except FailedPrecondition:
                pass

    threads = [threading.Thread(target=decider, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rec_id, won in winners.items():
        stored = w.review.get(rec_id)
        assert len(won) == 1 and stored.decided_by == won[0], (rec_id, won)
        assert stored.state is (S.APPROVED if int(won[0][3:]) % 2 == 0 else S.REJECTED)
        assert stored.revision == 1


def test_recommendations_are_listed_newest_first_a_page_at_a_time(w: World) -> None:
    made = []
    for i in range(5):
        made.append(proposed(w, f"v{i}").id)
        w.clock.advance(1)
    w.review.decide(made[1], Decision.REJECT, "bob", "no")
    first, token = w.review.page(None, 2)
    second, token2 = w.review.page(None, 2, token)
    last, end = w.review.page(None, 2, token2)
    assert [r.id for r in first + second + last] == made[::-1] and end == ""
    waiting, _ = w.review.page(S.PROPOSED)
    assert [r.id for r in waiting] == [made[4], made[3], made[2], made[0]]
    with pytest.raises(InvalidArgument, match="page_token: is not a page token of this listing"):
        w.review.page(S.PROPOSED, 2, token)  # a token of another listing
    with pytest.raises(InvalidArgument, match="page_size: must be in"):
        w.review.page(None, -1)


def test_every_host_assessed_for_a_move_is_paged_best_first(w: World) -> None:
    rec = proposed(w)
    page, token, total = w.review.assessments(rec.id, 0, 2)
    rest, end, _ = w.review.assessments(rec.id, 0, 2, token)
    assert total == 4 and end == ""
    found = page + rest
    assert found[0].host_id == rec.moves[0].target_host_id and found[0].eligible
    assert [(a.host_id, a.rejections) for a in found if not a.eligible] == [("a", ("current host",))]
    with pytest.raises(InvalidArgument, match=r"move_index: recommendation r1 has 1 move \(got index 1\)"):
        w.review.assessments(rec.id, 1)
    moves, more = w.review.moves(rec)
    assert moves == [(0, rec.moves[0])] and more == ""


def test_the_sweep_expires_what_no_longer_holds_giving_way_before_each_recommendation(w: World) -> None:
    """The periodic sweep is bulk work: urgent calls go first, between any two recommendations it looks at."""
    first, _ = proposed(w), proposed(w, vm_id="v1")
    w.push(hosts("a", "b", "c", "d", maintenance=first.moves[0].target_host_id))
    looked_at: list[int] = []

    class Counting(Priority):
        def give_way(self, unless: Callable[[], bool] = lambda: False) -> None:
            looked_at.append(len(looked_at))

    assert expire_stale(w.store, w.freshness, Counting()) >= 1
    assert w.review.get(first.id).state is S.EXPIRED
    assert len(looked_at) == 2  # two proposed, none approved
