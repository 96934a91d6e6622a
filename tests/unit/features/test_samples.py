from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.domain.model import HostSample, VmSample
from advisor.features.samples import RecentSamples, SeriesStore

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
    latest = samples.vms_latest(["v1", "v2"], ("cpu_utilization", "dirty_rate_mib_s"))
    assert latest["v1"][0] == 0.25 and math.isnan(latest["v1"][1]) and all(map(math.isnan, latest["v2"]))


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
        value = store.latest_values("v", [k])[0]  # the same, without the time
        assert value == measured[-1][1] if measured else math.isnan(value)
