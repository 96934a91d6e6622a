from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.domain.model import HostSample, VmSample
from advisor.features.samples import RecentSamples, Series, SeriesStore

VM_FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s")  # three fields are enough here


def test_ring_keeps_the_newest_samples_in_order() -> None:
    store = SeriesStore(VM_FIELDS, capacity=3)
    for t in range(5):
        store.add("v", 100.0 + t, (0.1 * t, None, float(t)))
    times, values = store.window("v")
    assert times.tolist() == [102.0, 103.0, 104.0]
    assert values[:, 2].tolist() == [2.0, 3.0, 4.0]
    latest = store.latest("v", "dirty_rate_mib_s")
    assert latest is not None and (latest.value, latest.time_s) == (4.0, 104.0)


def test_latest_skips_unmeasured_values() -> None:
    store = SeriesStore(VM_FIELDS, capacity=4)
    store.add("v", 1.0, (None, None, 7.0))
    store.add("v", 2.0, (0.5, None, None))
    latest = store.latest("v", "dirty_rate_mib_s")
    assert latest is not None and latest.time_s == 1.0
    assert store.latest("v", "memory_used_mib") is None
    assert store.latest("unknown", "cpu_utilization") is None


def test_out_of_order_samples_slot_into_place_and_same_time_replaces() -> None:
    store = SeriesStore(VM_FIELDS, capacity=3)
    store.add("v", 10.0, (None, None, 1.0))
    store.add("v", 30.0, (None, None, 3.0))
    store.add("v", 20.0, (None, None, 2.0))
    store.add("v", 30.0, (None, None, 33.0))
    store.add("v", 5.0, (None, None, 0.5))  # older than everything kept, ring full: dropped at the old end
    times, values = store.window("v")
    assert times.tolist() == [10.0, 20.0, 30.0]
    assert values[:, 2].tolist() == [1.0, 2.0, 33.0]


def test_latest_after_the_ring_wrapped_is_the_newest_measured() -> None:
    store = SeriesStore(VM_FIELDS, capacity=3)
    for t, dirty in enumerate((1.0, 2.0, 3.0, None, None)):  # the ring wraps; the newest two lack a dirty rate
        store.add("v", 100.0 + t, (0.5, None, dirty))
    latest = store.latest("v", "dirty_rate_mib_s")
    assert latest is not None and (latest.value, latest.time_s) == (3.0, 102.0)


def test_the_hosts_and_vms_sampled_since_are_taken_once_with_their_latest_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("advisor.features.samples.READ_CHUNK", 1)  # one entity per hold of the lock
    samples = RecentSamples()
    samples.add([HostSample("a", 10.0, cpu_utilization=0.5)],
                [VmSample("v1", 10.0, cpu_utilization=0.25), VmSample("v2", 10.0, dirty_rate_mib_s=4.0)])
    assert samples.take_updated() == ({"a"}, {"v1", "v2"})
    assert samples.take_updated() == (set(), set())  # taken
    samples.forget(vm_ids=("v2",))
    assert samples.take_updated() == (set(), {"v2"})  # a forgotten VM has changed too
    assert samples.hosts_latest(["a", "b"], "cpu_utilization") == {"a": 0.5, "b": pytest.approx(math.nan,
                                                                                                nan_ok=True)}
    latest = samples.vms_latest(["v2", "unknown", "v1"], ("cpu_utilization", "dirty_rate_mib_s"))
    assert latest.shape == (3, 2) and latest[2, 0] == 0.25 and np.isnan([*latest[:2].flat, latest[2, 1]]).all()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(st.integers(0, 12), st.lists(
    st.one_of(st.none(), st.floats(0, 100, width=32)), min_size=3, max_size=3)), max_size=30))
def test_latest_is_the_newest_measured_value_of_the_samples_kept(capacity: int,
                                                                 adds: list[tuple[int, list[float | None]]]) -> None:
    store = SeriesStore(VM_FIELDS, capacity=capacity)
    for time_s, row in adds:  # in and out of order, some at a time already held
        store.add("v", float(time_s), row)
    times, values = store.window("v")
    for k, name in enumerate(VM_FIELDS):
        measured = [(float(t), float(v)) for t, v in zip(times, values[:, k], strict=True) if not math.isnan(v)]
        latest = store.latest("v", name)
        assert (None if latest is None else (latest.time_s, latest.value)) == (measured[-1] if measured else None)
        value = store.latest_values(["v"], [k])[0, 0]  # the same, without the time
        assert value == measured[-1][1] if measured else math.isnan(value)


ids = st.sampled_from(("a", "b", "c"))
measured = st.one_of(st.none(), st.floats(0, 1, width=32))
push = st.tuples(st.just("push"), st.lists(st.tuples(st.booleans(), ids, st.integers(0, 20), measured), max_size=6))
restore = st.tuples(st.just("restore"), st.lists(st.tuples(st.booleans(), ids, st.integers(0, 20), measured),
                                                 min_size=1, max_size=3))
gone = st.tuples(st.just("forget"), st.lists(st.tuples(st.booleans(), ids, st.just(0), st.just(None)), max_size=2))
save = st.tuples(st.just("save"), st.just([]))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.lists(st.one_of(push, push, restore, gone, save), max_size=20))
def test_a_save_exports_the_newest_samples_of_each_entity_changed_since_the_last_save(
        capacity: int, newest: int, ops: list[tuple[str, list[tuple[bool, str, int, float | None]]]]) -> None:
    """Hosts then VMs, each by id, with their windows' newest samples as read one by one (a forgotten entity with
    none); samples restored are not changes; a chunk of two entities per hold of the lock."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("advisor.features.samples.READ_CHUNK", 2)
        samples, changed = RecentSamples(capacity), set()
        for op, entities in [*ops, ("save", [])]:
            if op == "push":
                samples.add([HostSample(e, 100.0 + t, cpu_utilization=v) for vm, e, t, v in entities if not vm],
                            [VmSample(e, 100.0 + t, dirty_rate_mib_s=v) for vm, e, t, v in entities if vm])
                changed |= {("vm" if vm else "host", e) for vm, e, _, _ in entities}
            elif op == "restore":
                fields = {"host": len(samples._hosts.fields), "vm": len(samples.vm_fields)}
                samples.restore([Series(kind, e, np.array([100.0 + t]), np.full((1, fields[kind]), np.nan if v is None
                                                                                 else v, dtype=np.float32))
                                 for vm, e, t, v in entities for kind in ["vm" if vm else "host"]])
            elif op == "forget":
                samples.forget([e for vm, e, _, _ in entities if not vm], [e for vm, e, _, _ in entities if vm])
                changed |= {("vm" if vm else "host", e) for vm, e, _, _ in entities}
            else:
                saved = samples.export_changed(newest)
                assert [(s.kind, s.entity_id) for s in saved] == sorted(changed)
                for series in saved:
                    times, values = (samples._hosts if series.kind == "host" else samples._vms).window(series.entity_id)
                    assert series.times.dtype == np.float64 and series.values.dtype == np.float32
                    np.testing.assert_array_equal(series.times, times[-newest:])
                    np.testing.assert_array_equal(series.values, values[-newest:])
                    assert series.values.shape == values[-newest:].shape
                changed.clear()


def test_a_save_gives_way_before_each_chunk_outside_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """`between` (the gate a recommendation in flight holds bulk work at) runs once per chunk of entities read, never
    while the samples' lock is held: a push waiting for that lock would wait for the recommendation too."""
    monkeypatch.setattr("advisor.features.samples.READ_CHUNK", 2)
    samples = RecentSamples(4)
    samples.add([HostSample(f"h{i}", 100.0, cpu_utilization=0.5) for i in range(3)],
                [VmSample(f"v{i}", 100.0, dirty_rate_mib_s=1.0) for i in range(5)])
    held: list[bool] = []
    saved = samples.export_changed(1, between=lambda: held.append(samples._lock.locked()))
    assert len(saved) == 8 and held == [False] * (2 + 3)  # hosts in chunks of 2, 1; VMs 2, 2, 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(0, 30), st.floats(0, 1)), max_size=40),
       st.lists(st.sampled_from("abcdefg"), max_size=4))
def test_a_batch_is_stored_a_block_at_a_time_as_its_samples_added_in_turn(
        batch: list[tuple[str, int, float]], seen_before: list[str]) -> None:
    """`add` stores a batch in the store's block order (blocks of two VMs here, some VMs known before): each VM
    ends with what adding its samples one at a time gives, out-of-order and repeated times included."""
    samples = [VmSample(vm_id=vm, time_s=1_796_000_000 + tick, cpu_utilization=cpu) for vm, tick, cpu in batch]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("advisor.features.series_store.CHUNK_ROWS", 2)
        patch.setattr("advisor.features.series_block.CHUNK_ROWS", 2)
        at_once, in_turn = RecentSamples(capacity=5), RecentSamples(capacity=5)
        for store in (at_once, in_turn):
            store.add((), [VmSample(vm_id=vm, time_s=1_796_000_000.0) for vm in seen_before])
        ordered = at_once.in_store_order((), samples)[1]
        assert sorted(map(id, ordered)) == sorted(map(id, samples))  # every sample once
        for vm in "abcdefg":  # each VM's in the order given
            assert [s for s in ordered if s.vm_id == vm] == [s for s in samples if s.vm_id == vm]
        at_once.add((), samples)
        for sample in samples:
            in_turn.add((), [sample])
        for vm in "abcdefg":
            for got, want in zip(at_once.vm_window(vm), in_turn.vm_window(vm), strict=True):
                np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(0, 30), st.floats(0, 1)), max_size=40),
       st.lists(st.sampled_from("abcdefgz"), max_size=10))
def test_the_windows_of_many_vms_read_at_once_are_each_vms_window(batch: list[tuple[str, int, float]],
                                                                   asked: list[str]) -> None:
    """`vm_windows` (in chunks of two VMs, blocks of two VMs here) gives what `vm_window` gives each VM, in the
    order asked: a VM twice, or never sampled (z), included."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("advisor.features.samples.READ_CHUNK", 2)
        patch.setattr("advisor.features.series_store.CHUNK_ROWS", 2)
        patch.setattr("advisor.features.series_block.CHUNK_ROWS", 2)
        samples = RecentSamples(capacity=5)
        samples.add((), [VmSample(vm_id=vm, time_s=1_796_000_000 + tick, cpu_utilization=cpu,
                                  dirty_rate_mib_s=10 * cpu) for vm, tick, cpu in batch])
        windows = samples.vm_windows(asked)
        assert len(windows) == len(asked)
        for vm, (times, values) in zip(asked, windows, strict=True):
            whole_times, whole_values = samples.vm_window(vm)
            assert times.dtype == whole_times.dtype and values.dtype == whole_values.dtype
            np.testing.assert_array_equal(times, whole_times)
            np.testing.assert_array_equal(values, whole_values)
