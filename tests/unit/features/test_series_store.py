"""The block store of recent samples returns what the ring per entity it replaced returned
(tests/unit/features/reference_rings.py), times within its rounding to the millisecond (to the second after a gap
of more than 32.767 s), values as float16 in their unit where it is given one."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.features.sample_times import EXACT_GAP_MS, MAX_GAP_MS, gap_code
from advisor.features.series_store import CHUNK_ROWS, UNREAD, UNSAVED, SeriesStore
from tests.unit.features.reference_rings import RingStore

FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s")
IDS = ("a", "b", "c")

values = st.lists(st.one_of(st.none(), st.floats(0, 6e4, width=32)), min_size=3, max_size=3)
add = st.tuples(st.just("add"), st.sampled_from(IDS), st.integers(0, 40), values)
forget = st.tuples(st.just("forget"), st.sampled_from(IDS), st.just(0), st.just([None] * 3))
batch = st.lists(st.tuples(st.sampled_from(IDS), st.integers(0, 40), values), max_size=20)  # rounds past ROUNDS_AT_ONCE
# put_many: series of one length (1 to 4), an entity's times in any order, an id given twice
put = st.integers(1, 4).flatmap(lambda length: st.tuples(st.just("put"), st.lists(st.tuples(
    st.sampled_from(IDS), st.lists(st.tuples(st.integers(0, 40), values), min_size=length, max_size=length)),
    min_size=1, max_size=3)))
Row = list[float | None]
Op = tuple[str, str, int, Row] | list[tuple[str, int, Row]] | tuple[str, list[tuple[str, list[tuple[int, Row]]]]]
T0 = 1_796_000_000
UNITS = (1.0, 1024.0, 1024.0)


def as_float16(row: Row) -> Row:
    return [None if v is None else float(np.float16(v / unit)) * unit for v, unit in zip(row, UNITS, strict=True)]


def replay(ops: list[Op], capacity: int, step_s: float, *, units: tuple[float, ...] | None = None,
           newest_only: tuple[str, ...] = ()) -> Iterator[tuple[SeriesStore, RingStore]]:
    """A store (values in `units` if given, fields `newest_only`) and the reference rings, empty, then after each
    operation (a tick is `step_s`): `add`, a batch through `add_many`, series through `put_many` (as their samples
    added in turn), `forget`. The reference is given what float16 in `units` makes of the values."""
    store = SeriesStore(FIELDS, capacity, units=units, newest_only=newest_only)
    reference = RingStore(FIELDS, capacity)
    kept = as_float16 if units else lambda row: row
    yield store, reference
    for op in ops:
        if isinstance(op, list):
            times = [T0 + tick * step_s for _, tick, _ in op]
            store.add_many([entity_id for entity_id, _, _ in op], times, [row for _, _, row in op])
            for (entity_id, _, row), time_s in zip(op, times, strict=True):
                reference.add(entity_id, time_s, kept(row))
        elif op[0] == "put":
            series = op[1]
            store.put_many([entity_id for entity_id, _ in series],
                           np.array([[T0 + tick * step_s for tick, _ in samples] for _, samples in series]),
                           np.array([[[math.nan if v is None else v for v in row] for _, row in samples]
                                     for _, samples in series], dtype=np.float32))
            for entity_id, samples in series:
                for tick, row in samples:
                    reference.add(entity_id, T0 + tick * step_s, kept(row))
        elif op[0] == "add":
            _, entity_id, tick, row = op
            store.add(entity_id, T0 + tick * step_s, row)
            reference.add(entity_id, T0 + tick * step_s, kept(row))
        else:
            store.forget(op[1])
            reference.forget(op[1])
        yield store, reference


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
        assert_equal(store.latest_values([entity_id], columns)[0], reference.latest_values(entity_id, columns))
    newest_reads_as_the_windows(store)


def newest_reads_as_the_windows(store: SeriesStore, n: int = 4) -> None:
    """`newest` of every entity at once: each one's newest measured values of a field, newest first, as its window
    has them."""
    entities = (*IDS, "unknown")
    for k, name in enumerate(FIELDS):
        got, have = store.newest(entities, name, n)
        assert got.shape == (len(entities), n)
        for row, entity_id in enumerate(entities):
            column = store.window(entity_id)[1][:, k]
            measured = column[~np.isnan(column)][::-1][:n]
            assert have[row] == len(measured)
            np.testing.assert_array_equal(got[row, : len(measured)], measured)
            assert np.isnan(got[row, len(measured):]).all()


def test_the_newest_values_of_entities_with_fewer_samples_than_asked_are_their_measured_ones() -> None:
    """Read from their newest samples alone when all of those measured the field (`newest`'s usual case, a VM
    sampled fewer times than a forecast's window), past an unmeasured sample otherwise."""
    store = SeriesStore(FIELDS, capacity=8)
    samples = {"one": [0.1], "two": [0.1, 0.2], "gap": [0.1, None, 0.3], "none": [None]}
    for entity_id, cpus in samples.items():
        for time_s, cpu in enumerate(cpus, start=1):
            store.add(entity_id, float(time_s), (cpu, 5.0, None))
    got, have = store.newest([*samples, "unknown"], "cpu_utilization", 4)
    a, b, c = (float(np.float32(v)) for v in (0.1, 0.2, 0.3))
    nan = math.nan
    np.testing.assert_array_equal(got, [[a, nan, nan, nan], [b, a, nan, nan], [c, a, nan, nan], [nan] * 4,
                                        [nan] * 4])
    assert have.tolist() == [1, 2, 2, 0, 0]
    newest_reads_as_the_windows(store)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.lists(st.one_of(add, add, add, forget, batch), max_size=40))
def test_the_same_as_a_ring_per_entity_for_times_to_the_millisecond(capacity: int, ops: list[Op]) -> None:
    """In and out of order, at times held (replacing), through the ring's wrap, entities forgotten and back, one
    sample at a time or a batch at once (`add_many`, an entity's several samples in it in order)."""
    for store, reference in replay(ops, capacity, step_s=0.125):  # whole milliseconds: kept exactly
        same(store, reference, tolerance_s=0.0)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.sampled_from((0.125, 40.0)), st.booleans(), st.integers(1, 7),
       st.lists(st.one_of(add, add, forget, batch, put), max_size=30))
def test_the_newest_samples_of_many_entities_read_at_once_are_the_ends_of_their_windows(
        capacity: int, step_s: float, in_units: bool, n: int, ops: list[Op]) -> None:
    """`windows`, one read a block at a time, gives each entity what `window(entity)[-n:]` gives, dtypes and
    NaN included: through the ring's wrap, series put at once, entities forgotten (or never seen: no samples),
    blocks of two entities here so that a read spans blocks and reuses freed rows."""
    entities = ["c", "unknown", *IDS, "a"]  # any order, an id twice
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("advisor.features.series_store.CHUNK_ROWS", 2)
        patch.setattr("advisor.features.series_block.CHUNK_ROWS", 2)
        for store, _ in replay(ops, capacity, step_s, units=UNITS if in_units else None):
            for entity_id, (times, vals) in zip(entities, store.windows(entities, n), strict=True):
                whole_times, whole_vals = store.window(entity_id)
                assert times.dtype == np.float64 and vals.dtype == np.float32
                assert times.shape == whole_times[-n:].shape and vals.shape == whole_vals[-n:].shape
                np.testing.assert_array_equal(times, whole_times[-n:])
                np.testing.assert_array_equal(vals, whole_vals[-n:])  # NaN where the window has NaN
    with pytest.raises(ValueError, match="at least 1"):
        store.windows(entities, 0)  # not window()[-0:], the whole window


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


@pytest.mark.parametrize(("gap_ms", "kept_ms"), [(1, 1), (15_000, 15_000), (EXACT_GAP_MS, EXACT_GAP_MS),
                                                 (EXACT_GAP_MS + 1, EXACT_GAP_MS), (32_999, EXACT_GAP_MS),
                                                 (33_000, 33_000), (33_999, 33_000), (900_500, 900_000),
                                                 (MAX_GAP_MS, MAX_GAP_MS)])
def test_a_gap_is_kept_to_the_millisecond_up_to_32_s_then_to_the_second_never_longer(gap_ms: int,
                                                                                      kept_ms: int) -> None:
    code, kept = gap_code(gap_ms)
    assert kept == kept_ms and 0 <= code < 2**16
    store = SeriesStore(FIELDS, capacity=3)
    store.add("v", 1e9, (0.5, None, None))
    store.add("v", 1e9 + gap_ms / 1000, (None, None, 2.0))
    times, _ = store.window("v")
    assert np.rint((times - 1e9) * 1000).tolist() == [0, kept_ms] and store.last_time("v") == times[-1]
    latest = store.latest("v", "dirty_rate_mib_s")
    assert latest is not None and latest.time_s == times[-1]
    store.add("v", 1e9 + gap_ms / 1000 + 0.001, (None, None, 3.0))  # just after: after it, and to the millisecond
    after_ms = np.rint((store.window("v")[0] - times[-1]) * 1000).tolist()
    assert after_ms[1:] == [0, 1 + gap_ms - kept_ms]


def test_a_gap_beyond_9_hours_pushes_out_the_samples_before_it_as_from_a_full_ring() -> None:
    store = SeriesStore(FIELDS, capacity=10)
    store.add("v", 1e9, (0.5, None, None))
    store.add("v", 1e9 + 60, (None, None, 2.0))
    store.add("v", 1e9 + 60 + MAX_GAP_MS / 1000 + 1, (None, None, 3.0))  # too long after the newest
    times, vals = store.window("v")
    assert (times - 1e9).tolist() == [60 + MAX_GAP_MS / 1000 + 1] and vals[:, 2].tolist() == [3.0]
    assert store.latest("v", "cpu_utilization") is None
    store.add("v", 1e9 + 30, (None, None, 9.0))  # older, too long before: in and straight out
    assert store.window("v")[0].tolist() == times.tolist()
    store.add("v", 1e9 + 60 + 1, (None, None, 4.0))  # exactly the longest gap before it: kept
    assert store.window("v")[1][:, 2].tolist() == [4.0, 3.0]
    for many in (False, True):  # the same through a batch
        other = SeriesStore(FIELDS, capacity=10)
        for t in (1e9, 1e9 + 60, 1e9 + 60 + MAX_GAP_MS / 1000 + 1):
            if many:
                other.add_many(["v"], [t], [(None, None, t)])
            else:
                other.add("v", t, (None, None, t))
        assert other.window("v")[0].tolist() == [1e9 + 60 + MAX_GAP_MS / 1000 + 1]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.lists(st.one_of(add, add, forget, batch), max_size=30))
def test_the_same_as_a_ring_per_entity_for_samples_minutes_apart(capacity: int, ops: list[Op]) -> None:
    """Gaps of whole seconds beyond 32.767 s (here 40 s to 27 minutes) are kept exactly, through the ring's wrap
    (the oldest's successor found from its gap) and in and out of order."""
    for store, reference in replay(ops, capacity, step_s=40.0):
        same(store, reference, tolerance_s=0.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.lists(st.one_of(add, add, forget, batch), max_size=30))
def test_values_in_units_are_kept_as_float16_within_their_precision_unknown_staying_unknown(
        capacity: int, ops: list[Op]) -> None:
    for store, reference in replay(ops, capacity, step_s=0.125, units=UNITS):
        same(store, reference, tolerance_s=0.0)
    for entity_id in IDS:  # within float16's precision of what was given (11 significant bits), after the last op
        _, vals = store.window(entity_id)
        np.testing.assert_allclose(vals, as_float16_array(vals), rtol=0)


def as_float16_array(vals: np.ndarray) -> np.ndarray:
    return (vals / np.array(UNITS, dtype=np.float32)).astype(np.float16).astype(np.float32) * np.array(UNITS)


def test_float16_keeps_what_the_checks_let_in_and_refuses_more_saying_which_field() -> None:
    store = SeriesStore(("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s"), 4, units=UNITS)
    store.add("v", 1.0, (1.0, 24 * 2**20, 200_000.0))  # a whole CPU, 24 TiB, 200,000 MiB/s
    store.add("v", 2.0, (0.3, 3000.0, 0.01))
    _, vals = store.window("v")
    assert vals[0].tolist() == [1.0, 24 * 2**20, pytest.approx(200_000.0, rel=2**-11)]
    np.testing.assert_allclose(vals[1, :2], [0.3, 3000.0], rtol=2**-11)
    assert abs(vals[1, 2] - 0.01) <= 2**-25 * 1024  # below 2**-14 units (1/16 MiB/s), to half of 2**-24 units
    with pytest.raises(ValueError, match=r"memory_used_mib beyond 6\.7"):
        store.add("v", 3.0, (0.5, 65_600.0 * 1024, None))
    with pytest.raises(ValueError, match="dirty_rate_mib_s"):
        store.add_many(["w", "v"], [3.0, 3.0], [(0.5, None, None), (None, None, 1e9)])
    assert len(store.window("v")[0]) == 2 and "w" not in store.ids()  # the batch refused whole
    with pytest.raises(ValueError, match="power of two"):
        SeriesStore(FIELDS, 4, units=(1.0, 1000.0, 1.0))


def test_rows_come_a_block_at_a_time_and_are_reused_a_field_s_column_once_measured() -> None:
    store = SeriesStore(FIELDS, capacity=120)
    store.add("v", 1.0, (0.5, None, None))
    one_field = store.nbytes()
    assert CHUNK_ROWS * 120 * (2 + 4) <= one_field <= 1.1 * CHUNK_ROWS * 120 * (2 + 4)
    store.add("v", 2.0, (None, 100.0, 1.0))
    block = store.nbytes()
    assert block == one_field + 2 * CHUNK_ROWS * 120 * 4
    assert np.isnan(store.window("v")[1][0, 1:]).all()  # the columns come in unknown where not measured
    for t in range(1000):
        store.add("v", float(t + 3), (0.5, 100.0, 1.0))
    for n in range(CHUNK_ROWS - 1):
        store.add(f"w{n}", 1.0, (0.5, None, None))
    assert store.nbytes() == block and math.isclose(float(store.window("v")[0][0]), 883.0)
    store.forget("w0")
    store.add("new", 5.0, (None, None, 7.0))  # the row w0 left
    assert store.nbytes() == block and store.window("new")[0].tolist() == [5.0]
    assert np.isnan(store.window("new")[1][0, :2]).all()
    store.add("one more", 5.0, (None, None, 7.0))
    assert store.nbytes() == block + CHUNK_ROWS * (120 * (2 + 4) + 8 + 8 + 4 + 4 + 4 * len(FIELDS) + 1)


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
