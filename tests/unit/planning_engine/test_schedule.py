"""Ordering under concurrency limits: per source, per target, per cluster, and room freed before it is used."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.planning.engine import Concurrency, schedule
from advisor.planning.engine.schedule import shared_bandwidths
from tests.unit.planning_engine.reference_schedule import list_schedule


def run(moves: list[tuple[int, int, float]], limits: Concurrency) -> tuple[list[float], float, int]:
    src, tgt, dur = (np.array(col) for col in zip(*moves, strict=True))
    s = schedule(src.astype(np.int64), tgt.astype(np.int64), dur.astype(np.float64), limits)
    return s.start_s.tolist(), s.duration_s, s.waves


@pytest.mark.parametrize(("moves", "limits", "starts", "duration", "waves"), [
    # three moves out of one host, 2 per source: the third waits for the first to end
    ([(0, 1, 10), (0, 2, 20), (0, 3, 10)], Concurrency(), [0, 0, 10], 20, 2),
    # three moves into one host, 2 per target
    ([(1, 0, 10), (2, 0, 10), (3, 0, 10)], Concurrency(), [0, 0, 10], 20, 2),
    # six independent moves, 5 in the cluster
    ([(k, 10 + k, 5.0) for k in range(6)], Concurrency(), [0, 0, 0, 0, 0, 5], 10, 2),
    # a blocked move does not hold back a later one (backfilling)
    ([(0, 1, 10), (0, 2, 10), (0, 3, 10), (4, 5, 10)], Concurrency(), [0, 0, 10, 0], 20, 2),
    # moving into host 0 waits until the move out of host 0 has freed its room
    ([(0, 1, 30), (2, 0, 10)], Concurrency(), [0, 30], 40, 2),
    # one at a time everywhere: the durations add up
    ([(0, 1, 1), (2, 3, 2), (4, 5, 3)], Concurrency(1, 1, 1), [0, 1, 3], 6, 3),
], ids=["per source", "per target", "per cluster", "backfill", "room first", "serial"])
def test_schedule(moves: list[tuple[int, int, float]], limits: Concurrency, starts: list[float], duration: float,
                  waves: int) -> None:
    got_starts, got_duration, got_waves = run(moves, limits)
    assert got_starts == pytest.approx(starts)
    assert got_duration == pytest.approx(duration)
    assert got_waves == waves


def test_waves_wait_for_their_slowest_move() -> None:
    src, tgt, dur = np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([10.0, 20.0, 10.0])
    s = schedule(src, tgt, dur, Concurrency())
    assert s.wave.tolist() == [0, 0, 1] and s.barrier_s == 30.0 and s.duration_s == 20.0


def test_no_limit_is_ever_exceeded_on_a_random_plan() -> None:
    rng = np.random.default_rng(3)
    n = 300
    src, tgt = rng.integers(0, 20, n), rng.integers(20, 40, n)
    dur = rng.uniform(1, 30, n)
    limits = Concurrency(2, 2, 5)
    s = schedule(src, tgt, dur, limits)
    events = sorted(set(s.start_s.tolist()))
    for t in events:
        running = (s.start_s <= t) & (s.end_s > t)
        assert running.sum() <= limits.cluster
        assert np.bincount(src[running]).max() <= limits.per_source
        assert np.bincount(tgt[running]).max() <= limits.per_target
    assert s.duration_s >= dur.sum() / limits.cluster
    for w in range(s.waves):  # the same limits hold within every barrier wave
        inside = s.wave == w
        assert 0 < inside.sum() <= limits.cluster
        assert np.bincount(src[inside]).max() <= limits.per_source
        assert np.bincount(tgt[inside]).max() <= limits.per_target
    assert s.barrier_s >= s.duration_s
    assert schedule(src[:0], tgt[:0], dur[:0]).waves == 0


@pytest.mark.parametrize(("links", "limits", "expected"), [
    # equal links: the busier side divides it
    ((100.0, 100.0), Concurrency(2, 2, 5), [[100.0, 50.0], [50.0, 50.0]]),
    # a slow target bounds every case until the source's share falls below it
    ((100.0, 40.0), Concurrency(2, 2, 5), [[40.0, 20.0], [40.0, 20.0]]),
    # three out of one source
    ((90.0, 90.0), Concurrency(3, 1, 5), [[90.0], [45.0], [30.0]]),
], ids=["equal", "slow target", "three out"])
def test_shared_bandwidths(links: tuple[float, float], limits: Concurrency, expected: list[list[float]]) -> None:
    got = shared_bandwidths(np.array([links[0]]), np.array([links[1]]), limits)
    assert got[0].ravel().tolist() == pytest.approx(np.ravel(expected).tolist())


def test_a_move_starting_beside_another_on_its_links_takes_its_shared_duration() -> None:
    # durations (alone, beside one on the target; beside one on the source, beside one on each)
    shared = np.array([[[10.0, 20.0], [20.0, 20.0]]] * 3)
    s = schedule(np.array([0, 0, 0]), np.array([1, 2, 3]), shared, Concurrency())
    # the first starts alone (10 s), the second beside it (20 s); the third starts at 10 s beside the second
    assert s.start_s.tolist() == pytest.approx([0, 0, 10])
    assert s.end_s.tolist() == pytest.approx([10, 20, 30])
    assert s.duration_s == pytest.approx(30)
    assert s.case is not None and s.case.tolist() == [0, 2, 2]


def test_a_drain_of_twenty_vms_is_priced_with_the_link_shared() -> None:
    alone = np.full(20, 10.0)
    halved = np.broadcast_to(np.array([[10.0, 20.0], [20.0, 20.0]]), (20, 2, 2))
    src, tgt = np.zeros(20, dtype=np.int64), np.arange(1, 21, dtype=np.int64)
    # at full speed two at a time: 10 rounds of 10 s; sharing the link: every move after the first takes 20 s
    assert schedule(src, tgt, alone).duration_s == pytest.approx(100)
    assert schedule(src, tgt, halved).duration_s == pytest.approx(200)


# durations: few distinct values (moves ending together), an infinite one or NaN now and then
durations = st.sampled_from([0.0, 1.0, 2.0, 2.0, 3.5, 10.0, -1.0, float("inf"), float("nan")])
moves = st.lists(st.tuples(st.integers(-3, 5), st.integers(-3, 5), st.lists(durations, min_size=9, max_size=9)),
                 min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(moves, st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.booleans())
def test_the_compiled_schedule_starts_each_move_when_and_as_the_python_one_did(
        plan: list[tuple[int, int, list[float]]], per_source: int, per_target: int, cluster: int,
        shared: bool) -> None:
    """Starts, durations and sharing cases as the reference (tests/unit/planning_engine/reference_schedule.py):
    moves ending at the same instant, never (inf) or at NaN, hosts negative (evacuate's dead sources), a move out
    of and into one host, durations per sharing case or one per move."""
    limits = Concurrency(per_source, per_target, cluster)
    src, tgt = np.array([m[0] for m in plan]), np.array([m[1] for m in plan])
    table = np.array([m[2] for m in plan])[:, : per_source * per_target]
    dur = table.reshape(len(plan), per_source, per_target) if shared else table[:, 0]
    start, took, case = list_schedule(src, tgt, dur, limits)
    with np.errstate(invalid="ignore"):  # NaN's slowest move per wave, as before
        got = schedule(src, tgt, dur, limits)
    np.testing.assert_array_equal(got.start_s, start)  # NaN where the reference has NaN
    np.testing.assert_array_equal(got.end_s, np.array(start) + np.array(took))
    assert got.case is not None and got.case.tolist() == case
