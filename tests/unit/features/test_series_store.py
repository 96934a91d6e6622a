"""The block store of recent samples returns what the ring per entity it replaced returned
(tests/unit/features/reference_rings.py), times within its rounding to the millisecond."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.features.series_store import CHUNK_ROWS, SPAN_MS, UNREAD, UNSAVED, SeriesStore
from tests.unit.features.reference_rings import RingStore

FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s")
IDS = ("a", "b", "c")

values = st.lists(st.one_of(st.none(), st.floats(0, 1e5, width=32)), min_size=3, max_size=3)
add = st.tuples(st.just("add"), st.sampled_from(IDS), st.integers(0, 40), values)
forget = st.tuples(st.just("forget"), st.sampled_from(IDS), st.just(0), st.just([None] * 3))
batch = st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 40), values), max_size=8)


def same(store: SeriesStore, reference: RingStore, tolerance_s: float) -> None:
    assert sorted(store.ids()) == sorted(reference.ids()) and len(store) == len(reference)
    for entity_id in (*IDS, "unknown"):
        times, vals = store.window(entity_id)
        ref_times, ref_vals = reference.window(entity_id)
        assert times.dtype == np.float64 and vals.dtype == np.float32
        np.testing.assert_allclose(times, ref_times, rtol=0, atol=tolerance_s)
        np.testing.assert_array_equal(vals, ref_vals)  # NaN where the reference has NaN
        assert store.last_time(entity_id) == (float(times[-1]) if len(times) else None)
        for name in FIELDS:
            latest, ref = store.latest(entity_id, name), reference.latest(entity_id, name)
            assert (latest is None) == (ref is None)
            if latest is not None and ref is not None:
                assert latest.value == ref.value and abs(latest.time_s - ref.time_s) <= tolerance_s
        columns = [2, 0]
        assert_equal = np.testing.assert_array_equal
        assert_equal(store.latest_values(entity_id, columns), reference.latest_values(entity_id, columns))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.lists(st.one_of(add, add, add, forget, batch), max_size=40))
def test_the_same_as_a_ring_per_entity_for_times_to_the_millisecond(
        capacity: int, ops: list[tuple[str, str, int, list[float | None]] | list[tuple[str, int, list[float | None]]]]
) -> None:
    """In and out of order, at times held (replacing), through the ring's wrap, entities forgotten and back, one
    sample at a time or a batch at once (`add_many`, an entity's several samples in it in order)."""
    store, reference = SeriesStore(FIELDS, capacity), RingStore(FIELDS, capacity)
    for op in ops:
        if isinstance(op, list):
            times = [1_796_000_000 + tick * 0.125 for _, tick, _ in op]  # whole milliseconds: kept exactly
            store.add_many([entity_id for entity_id, _, _ in op], times, [row for _, _, row in op])
            for (entity_id, _, row), time_s in zip(op, times, strict=True):
                reference.add(entity_id, time_s, row)
        elif op[0] == "add":
            _, entity_id, tick, row = op
            store.add(entity_id, 1_796_000_000 + tick * 0.125, row)
            reference.add(entity_id, 1_796_000_000 + tick * 0.125, row)
        else:
            store.forget(op[1])
            reference.forget(op[1])
        same(store, reference, tolerance_s=0.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 30), st.floats(0, 0.998), values), max_size=40))
def test_any_time_is_kept_to_the_nearest_millisecond(adds: list[tuple[str, int, float, list[float | None]]]) -> None:
    """Times between whole milliseconds come back within half of one (distinct milliseconds: within one, a sample
    replaces the one held, which the reference does only at equal times)."""
    store, reference, half = SeriesStore(FIELDS, 4), RingStore(FIELDS, 4), len(adds) // 2
    times = [1_796_000_000 + second + round(fraction, 3) + 0.0004 for _, second, fraction, _ in adds]
    for (entity_id, _, _, row), time_s in zip(adds[:half], times, strict=False):
        store.add(entity_id, time_s, row)
    store.add_many([a[0] for a in adds[half:]], times[half:], [a[3] for a in adds[half:]])
    for (entity_id, _, _, row), time_s in zip(adds, times, strict=True):
        reference.add(entity_id, time_s, row)
    same(store, reference, tolerance_s=0.0005)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 40), values), max_size=30),
       st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 40), values), max_size=10))
def test_a_whole_series_put_at_once_is_the_same_as_its_samples_added_in_turn(
        capacity: int, saved: list[tuple[str, int, list[float | None]]],
        newer: list[tuple[str, int, list[float | None]]]) -> None:
    """A restart's restore: each entity's saved series (any order, times held twice) at once, then samples as
    they come; an entity that already has samples gets a series one by one."""
    store, reference = SeriesStore(FIELDS, capacity), RingStore(FIELDS, capacity)
    for entity_id in IDS:
        mine = [(1_796_000_000 + tick * 0.125, row) for e, tick, row in saved if e == entity_id]
        rows = np.array([[math.nan if v is None else v for v in row] for _, row in mine], dtype=np.float32)
        store.put_series(entity_id, np.array([t for t, _ in mine]), rows.reshape(len(mine), len(FIELDS)))
        for time_s, row in mine:
            reference.add(entity_id, time_s, row)
    assert store.take_marked(UNSAVED, 0) == set()  # restored as saved: nothing to save again
    for entity_id, tick, row in newer:
        store.add(entity_id, 1_796_000_000 + tick * 0.125, row)
        reference.add(entity_id, 1_796_000_000 + tick * 0.125, row)
    store.put_series("a", np.array([1_796_000_001.0]), np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    reference.add("a", 1_796_000_001.0, [1.0, 2.0, 3.0])
    same(store, reference, tolerance_s=0.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(0, 6),
       st.lists(st.tuples(st.sampled_from(IDS), st.lists(st.tuples(st.integers(0, 40), values), min_size=0,
                                                          max_size=6), st.booleans()), max_size=6))
def test_many_series_put_at_once_are_the_same_as_their_samples_added_in_turn(
        capacity: int, length: int,
        saved: list[tuple[str, list[tuple[int, list[float | None]]], bool]]) -> None:
    """Series of one length, most with rising times (put a block at once), some not, an id given twice."""
    store, reference = SeriesStore(FIELDS, capacity), RingStore(FIELDS, capacity)
    series = []
    for entity_id, samples, rising in saved:
        ticks = [tick for tick, _ in samples][:length] + [41 + k for k in range(length - len(samples))]
        ticks = sorted(set(ticks)) + [50 + k for k in range(length - len(set(ticks)))] if rising else ticks
        rows = [row for _, row in samples][:length] + [[0.5, None, 1.0]] * (length - len(samples))
        series.append((entity_id, [1_796_000_000 + tick * 0.125 for tick in ticks], rows))
    store.put_many([e for e, _, _ in series], np.array([t for _, t, _ in series]).reshape(len(series), length),
                   np.array([[[math.nan if v is None else v for v in row] for row in rows] for _, _, rows in series],
                            dtype=np.float32).reshape(len(series), length, len(FIELDS)))
    for entity_id, times, rows in series:
        for time_s, row in zip(times, rows, strict=True):
            reference.add(entity_id, time_s, row)
    same(store, reference, tolerance_s=0.0)


def test_a_row_spans_at_most_24_days_older_samples_leave_as_from_a_full_ring() -> None:
    store = SeriesStore(FIELDS, capacity=10)
    day = 86_400.0
    store.add("v", 0.0 * day + 1e9, (0.5, None, None))
    store.add("v", 1.0 * day + 1e9, (None, None, 2.0))
    store.add("v", 25.5 * day + 1e9, (None, None, 3.0))  # beyond the span of the first: it leaves
    times, vals = store.window("v")
    assert (times - 1e9).tolist() == [1.0 * day, 25.5 * day] and vals[:, 2].tolist() == [2.0, 3.0]
    assert store.latest("v", "cpu_utilization") is None
    store.add("v", 0.5 * day + 1e9, (None, None, 9.0))  # older than the span: in and straight out
    assert store.window("v")[0].tolist() == times.tolist()
    store.add("v", 1e9 + (SPAN_MS + 1.0 * day * 1000) / 1000, (None, None, 4.0))  # exactly the span: kept
    assert len(store.window("v")[0]) == 3


def test_rows_come_a_block_at_a_time_and_are_reused() -> None:
    store = SeriesStore(FIELDS, capacity=120)
    store.add("v", 1.0, (0.5, 100.0, 1.0))
    block = store.nbytes()
    assert CHUNK_ROWS * 120 * (4 + 4 * len(FIELDS)) <= block <= 1.1 * CHUNK_ROWS * 120 * (4 + 4 * len(FIELDS))
    for t in range(1000):
        store.add("v", float(t + 2), (0.5, 100.0, 1.0))
    for n in range(CHUNK_ROWS - 1):
        store.add(f"w{n}", 1.0, (0.5, None, None))
    assert store.nbytes() == block and math.isclose(float(store.window("v")[0][0]), 882.0)
    store.forget("w0")
    store.add("new", 5.0, (None, None, 7.0))  # the row w0 left
    assert store.nbytes() == block and store.window("new")[0].tolist() == [5.0]
    store.add("one more", 5.0, (None, None, 7.0))
    assert store.nbytes() == 2 * block


def test_marks_say_what_changed_since_taken_each_for_its_own_reader() -> None:
    store = SeriesStore(FIELDS, capacity=3)
    store.add("a", 1.0, (0.5, None, None))
    store.add("b", 1.0, (0.5, None, None), mark=False)  # restored: nothing new
    store.forget("c")  # never seen: maybe saved, so changed
    assert store.take_marked(UNREAD, 0) == {"a", "c"}
    assert store.take_marked(UNREAD, 0) == set()
    store.forget("a")
    store.add("a", 2.0, (0.5, None, None))  # forgotten and back
    assert store.take_marked(UNSAVED, 0) == {"a", "c"} and store.take_marked(UNREAD, 0) == {"a"}
    assert store.take_marked(UNSAVED, 1) == set()  # a block not allocated


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SeriesStore(FIELDS, capacity=0)
