"""Ordering under concurrency limits: per source, per target, per cluster, and room freed before it is used."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import Concurrency, schedule


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
