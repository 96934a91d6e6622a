"""Deciding recommendations through the review use case, on the real SQLite store: validation, the lifecycle's
refusals, and the compare-and-set that lets exactly one of two concurrent deciders win."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from advisor.adapters.sqlite.store import SqliteStore
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.domain.recommendation import Recommendation, RecommendationState
from advisor.metrics import AdvisorMetrics
from advisor.usecases.review import Review

COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))


def pending(rec_id: str) -> Recommendation:
    move = Move("v", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300), COST, ("why",))
    return Recommendation(rec_id, "target:v", 1.0, (move,), "summary")


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "db.sqlite3")


def review(store: SqliteStore) -> Review:
    return Review(store, AdvisorMetrics(CollectorRegistry()), lambda: 100.0)


def test_decisions_are_checked_then_stored(store: SqliteStore) -> None:
    store.add_recommendation(pending("r1"))
    r = review(store)
    with pytest.raises(InvalidArgument, match="actor: is required"):
        r.decide("r1", True, " ", "")
    with pytest.raises(InvalidArgument, match="reason: is required to reject"):
        r.decide("r1", False, "bob", "")
    with pytest.raises(NotFound, match="unknown recommendation 'nope'"):
        r.decide("nope", True, "bob", "")
    approved = r.decide("r1", True, "bob", "fine")
    assert approved.state is RecommendationState.APPROVED and approved.revision == 1
    assert store.get_recommendation("r1") == approved
    with pytest.raises(FailedPrecondition, match=r"is approved \(by bob\)"):
        r.decide("r1", False, "carol", "no")


def test_compare_and_set_refuses_a_stale_writer(store: SqliteStore) -> None:
    store.add_recommendation(pending("r1"))
    read_by_both = store.get_recommendation("r1")
    assert read_by_both is not None
    first = store.replace_recommendation(read_by_both, read_by_both.__class__(
        **{**read_by_both.__dict__, "state": RecommendationState.APPROVED}))
    second = store.replace_recommendation(read_by_both, read_by_both.__class__(
        **{**read_by_both.__dict__, "state": RecommendationState.REJECTED}))
    assert first is not None and first.revision == 1 and second is None
    stored = store.get_recommendation("r1")
    assert stored is not None and stored.state is RecommendationState.APPROVED


def test_of_many_concurrent_deciders_exactly_one_wins(store: SqliteStore) -> None:
    for i in range(20):
        store.add_recommendation(pending(f"r{i}"))
    r = review(store)
    outcomes: dict[str, list[str]] = {f"r{i}": [] for i in range(20)}
    start = threading.Barrier(8)

    def decider(n: int) -> None:
        start.wait()
        for rec_id, winners in outcomes.items():
            try:
                r.decide(rec_id, n % 2 == 0, f"sre{n}", "reason")
                winners.append(f"sre{n}")
            except FailedPrecondition:
                pass

    threads = [threading.Thread(target=decider, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rec_id, winners in outcomes.items():
        stored = store.get_recommendation(rec_id)
        assert stored is not None and len(winners) == 1, (rec_id, winners)
        assert stored.decided_by == winners[0]
        assert stored.state is (RecommendationState.APPROVED if int(winners[0][3:]) % 2 == 0
                                else RecommendationState.REJECTED)


def test_a_version_1_database_gains_revisions(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    SqliteStore(path).add_recommendation(pending("old"))
    with sqlite3.connect(path) as db:  # as schema version 1 left it: no revision column
        db.execute("ALTER TABLE recommendations DROP COLUMN revision")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    reopened = SqliteStore(path)
    old = reopened.get_recommendation("old")
    assert old is not None and old.revision == 0
    assert review(reopened).decide("old", True, "bob", "").revision == 1
