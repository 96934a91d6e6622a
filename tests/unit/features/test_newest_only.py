"""Fields whose newest value alone is kept (`SeriesStore(newest_only=...)`, the VM's working set, disk write rate
and resident memory in `RecentSamples`): their newest value and its time are those the ring of every sample gave,
and in a window they are NaN but in the sample that measured them last."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.domain.model import VmSample
from advisor.features.samples import VM_FIELDS, VM_NEWEST_ONLY, RecentSamples
from advisor.features.series_store import Latest, SeriesStore
from tests.unit.features.reference_rings import RingStore
from tests.unit.features.test_series_store import FIELDS, IDS, Op, Row, add, batch, forget, put, replay

ONLY = "dirty_rate_mib_s"  # the field kept newest-only here
K = FIELDS.index(ONLY)


def alike_at_a_time(entity_id: str, tick: int, row: Row) -> Row:
    """The row with its newest-only value set by its entity and time: a sample given again at a time held measures
    it alike (as a push retried does). A sample replacing another at its time that does not measure a newest-only
    field the replaced one measured leaves it unmeasured, where the ring fell back to the measurement before
    (`test_a_sample_at_a_time_held_replaces_it_even_unmeasured`)."""
    measured = (tick + IDS.index(entity_id)) % 3 != 0
    return [*row[:K], float(10 * tick + IDS.index(entity_id)) if measured else None, *row[K + 1:]]


def alike(op: Op) -> Op:
    if isinstance(op, list):
        return [(e, tick, alike_at_a_time(e, tick, row)) for e, tick, row in op]
    if op[0] == "put":
        return ("put", [(e, [(tick, alike_at_a_time(e, tick, row)) for tick, row in samples]) for e, samples in op[1]])
    _, e, tick, row = op
    return (op[0], e, tick, alike_at_a_time(e, tick, row) if op[0] == "add" else row)


def same_newest(store: SeriesStore, reference: RingStore) -> None:
    for entity_id in (*IDS, "unknown"):
        times, vals = store.window(entity_id)
        ref_times, ref_vals = reference.window(entity_id)
        np.testing.assert_array_equal(times, ref_times)
        others = [k for k in range(len(FIELDS)) if k != K]
        np.testing.assert_array_equal(vals[:, others], ref_vals[:, others])
        expected = np.full(len(ref_vals), np.nan, dtype=np.float32)  # NaN but in the sample measuring it last
        if (measured := np.flatnonzero(~np.isnan(ref_vals[:, K]))).size:
            expected[measured[-1]] = ref_vals[measured[-1], K]
        np.testing.assert_array_equal(vals[:, K], expected)
        for name in FIELDS:
            assert store.latest(entity_id, name) == reference.latest(entity_id, name)
        columns = [K, 0]
        np.testing.assert_array_equal(store.latest_values([entity_id], columns)[0],
                                      reference.latest_values(entity_id, columns))
    got, have = store.newest((*IDS, "unknown"), ONLY, 3)
    np.testing.assert_array_equal(got[:, 0], store.latest_values((*IDS, "unknown"), [K])[:, 0])
    assert np.isnan(got[:, 1:]).all() and have.tolist() == (~np.isnan(got[:, 0])).astype(int).tolist()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.lists(st.one_of(add, add, forget, batch, put), max_size=30))
def test_a_newest_only_field_reads_as_the_ring_of_every_sample_gave_its_newest(capacity: int, ops: list[Op]) -> None:
    """In order, out of order, unmeasured in newer samples, pushed out of a full ring, forgotten, put at once (a
    restore): its newest value and time are the reference's; the other fields are untouched."""
    for store, reference in replay([alike(op) for op in ops], capacity, step_s=0.125, newest_only=(ONLY,)):
        same_newest(store, reference)


def test_a_newest_only_field_costs_two_bytes_an_entity_not_a_column() -> None:
    whole, newest = SeriesStore(FIELDS, 120, units=(1.0,) * 3), SeriesStore(FIELDS, 120, units=(1.0,) * 3,
                                                                             newest_only=(ONLY,))
    for store in (whole, newest):
        store.add("v", 1e9, (0.5, 1.0, 2.0))
    assert whole.nbytes() - newest.nbytes() == 512 * 120 * 2 - 512 * 2


def test_a_sample_at_a_time_held_replaces_it_even_unmeasured() -> None:
    """The one difference from a ring of every sample: the measurement before is not kept to fall back on."""
    store = SeriesStore(FIELDS, 4, newest_only=(ONLY,))
    store.add("v", 1.0, (None, None, 5.0))
    store.add("v", 2.0, (None, None, 7.0))
    store.add("v", 2.0, (0.5, None, None))  # the sample at 2 s again, without it: was 5.0 at 1 s
    assert store.latest("v", ONLY) is None


@pytest.mark.parametrize(("pushed", "expected"), [
    ([(10.0, 4.0)], (4.0, 10.0)),
    ([(10.0, 4.0), (20.0, 6.0)], (6.0, 20.0)),  # in order
    ([(20.0, 6.0), (10.0, 4.0)], (6.0, 20.0)),  # out of order: an older one does not replace it
    ([(10.0, 4.0), (20.0, None)], (4.0, 10.0)),  # a newer sample without it does not erase it
    ([(10.0, 4.0), (20.0, None), (5.0, 1.0)], (4.0, 10.0)),
    ([(10.0, 4.0), (20.0, None), (30.0, None), (40.0, None)], None),  # pushed out of the ring (3), as before
    ([(10.0, None)], None),
])
@pytest.mark.parametrize("field", VM_NEWEST_ONLY)
def test_recent_samples_keep_the_newest_of_a_newest_only_vm_field(
        field: str, pushed: list[tuple[float, float | None]], expected: tuple[float, float] | None) -> None:
    samples = RecentSamples(capacity=3)
    for time_s, value in pushed:
        samples.add([], [VmSample("v", time_s, cpu_utilization=0.5, **({} if value is None else {field: value}))])
    latest = samples.vm_latest("v", field)
    assert (None if latest is None else (latest.value, latest.time_s)) == expected
    np.testing.assert_array_equal(samples.vms_latest(["v", "w"], [field, "cpu_utilization"]),
                                  [[np.nan if expected is None else expected[0], 0.5], [np.nan, np.nan]])
    times, values = samples.vm_window("v")
    assert values.shape == (len(times), len(VM_FIELDS))
    column = values[:, VM_FIELDS.index(field)]
    assert [(t, float(v)) for t, v in zip(times.tolist(), column.tolist(), strict=True) if not math.isnan(v)] == (
        [] if expected is None else [(expected[1], expected[0])])  # NaN but in the sample measuring it last


def test_a_restart_restores_the_newest_values_and_forget_drops_them() -> None:
    samples = RecentSamples(capacity=3)
    samples.add([], [VmSample("v", 10.0, cpu_utilization=0.1, disk_write_rate_mib_s=4.0, resident_memory_mib=900.0),
                     VmSample("v", 20.0, cpu_utilization=0.2, disk_write_rate_mib_s=6.0),
                     VmSample("w", 20.0, resident_memory_mib=300.0)])
    assert samples.take_updated()[1] == {"v", "w"}
    restarted = RecentSamples(capacity=3)
    assert restarted.restore(samples.export_changed(newest=2)) == 2
    for field in (*VM_NEWEST_ONLY, "cpu_utilization"):
        assert restarted.vm_latest("v", field) == samples.vm_latest("v", field)
        assert restarted.vm_latest("w", field) == samples.vm_latest("w", field)
    assert restarted.vm_latest("v", "disk_write_rate_mib_s") == Latest(6.0, 20.0)
    assert restarted.vm_latest("v", "resident_memory_mib") == Latest(900.0, 10.0)
    restarted.forget(vm_ids=["v"])
    assert restarted.vm_latest("v", "resident_memory_mib") is None and restarted.take_updated()[1] == {"v"}
    restarted.add([], [VmSample("v", 30.0, cpu_utilization=0.3)])
    assert restarted.vm_latest("v", "resident_memory_mib") is None  # nothing left of before the forget
    assert np.isnan(restarted.vms_latest(["v", "w"], ["resident_memory_mib"])[0, 0])
    assert restarted.vms_latest(["v", "w"], ["resident_memory_mib"])[1, 0] == 300.0
