"""The cluster as the planning engine reads it: arrays (advisor.planning.engine.ClusterArrays) of the inventory and
the latest samples, kept current by updates rather than rebuilt.

Building the arrays whole takes about 0.25 s at 1,000 hosts and 20,000 VMs, too long for every RecommendTarget
call (its budget is a few ms). So one snapshot is kept, an immutable value that readers take without waiting. A
writer (one at a time) prepares the next from it, applying the inventory changes since (`Inventory.changes_since`)
and the samples of the hosts and VMs sampled since (`RecentSamples.take_updated`), and swaps it in: an update
touches the rows that changed (`Tracked`), milliseconds. The first snapshot is built whole, once, however many
callers wait for it; so is one after the inventory ran further ahead than the changes it keeps.

`get()` answers from the snapshot at hand and, when it is stale (the inventory changed, or it is older than
`max_age_s`), starts its update in the background: a recommendation never waits behind a push, and is at most
`max_age_s` behind the samples; that update gives way to recommendations and placements in flight between
pieces of its work (advisor.usecases.priority), unless a caller waits for it. A plan asks for a fresh one
(`fresh()`); placing a new VM and checking a move before it starts ask for one of the inventory as it is now
(`current()`).

A rebalance that foresees overload asks for a fresh one with a `Forecast`: each VM's CPU is then the forecast of
its recent CPU samples and its spread their standard deviation, by the very function the simulator feeds the
engine with (advisor/planning/engine/forecast.py); a VM with too few samples keeps an unknown spread, and one with
none its measured (or inferred) CPU.

The rules the filters apply are those the inventory carries: each VM's affinity groups (soft) and anti-affinity
groups (hard), which the arrays read from the VMs. The inventory has no VM-host rule nor hard affinity group to
feed; one added there reaches RecommendTarget, PlaceVm, plans and the check before a move alike, through here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np

from advisor.features.samples import RecentSamples
from advisor.planning.engine import ClusterArrays
from advisor.planning.engine.domain_arrays import Tracked
from advisor.planning.engine.forecast import Forecast, forecast_utilization, with_forecast
from advisor.planning.engine.measured import Measured, VmMeasurement
from advisor.planning.engine.snapshot import FloatArray
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock
from advisor.usecases.priority import URGENT, Priority

# a VM's samples and a host's, in the order of VmMeasurement's and HostMeasurement's fields (with_measured_rows)
VM_MEASURES = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s", "disk_write_rate_mib_s", "resident_memory_mib",
               "working_set_mib")
HOST_MEASURES = ("cpu_utilization", "load_per_cpu")
READ_PIECE = 500  # VMs' samples read between two chances to give way to an urgent call (about 2 ms)
NAN = float("nan")


@dataclass(frozen=True)
class _Snapshot:
    version: int  # the inventory's, when it was made
    made_at: float
    tracked: Tracked


class Snapshots:
    def __init__(self, inventory: Inventory, samples: RecentSamples, clock: Clock, *, max_age_s: float = 5.0,
                 unmovable: Callable[[], frozenset[str]] = frozenset, cluster_label: str = "",
                 priority: Priority = URGENT) -> None:
        self._inventory = inventory
        self._cluster_label = cluster_label  # hosts' label naming their cluster: VMs move within theirs
        self._samples = samples
        self._clock = clock
        self._max_age_s = max_age_s
        self._unmovable = unmovable  # VMs no plan may move: opted out, or migrating now
        self._writing = threading.Lock()  # one writer at a time prepares the next snapshot
        # A writer gives way to urgent calls (a recommendation that started it) between pieces of its work, but
        # not while a caller waits for `_writing`.
        self._priority = priority
        self._wanted_lock = threading.Lock()
        self._wanted = 0  # callers waiting for `_writing`
        # Replaced whole, never changed: readers take it without a lock (an attribute read is atomic).
        self._current: _Snapshot | None = None

    def _next(self, *, samples: bool = True) -> _Snapshot:
        """The snapshot of now, from the current one where it can be (holding `_writing`); without `samples`, with
        the current one's samples (and those of the hosts and VMs pushed since), as old as it is."""
        current = self._current
        # before reading: none is missed (without `samples`, they are left for the next update)
        sampled_hosts, sampled_vms = self._samples.take_updated() if samples else (set(), set())
        self._give_way()
        with self._inventory.reading() as cluster:
            version = self._inventory.version
            changes = None if current is None else self._inventory.changes_since(current.version)
            if current is None or changes is None:
                hosts, vms = list(cluster.hosts.values()), list(cluster.vms.values())
        self._give_way()
        pinned = self._unmovable()
        if current is None or changes is None:
            latest = self._vms_latest([v.id for v in vms])  # a row per VM, in their order
            host_cpu, host_load = self._hosts_latest([h.id for h in hosts]).T
            vm_columns = {f"vm_{f.name}": np.ascontiguousarray(column)
                          for f, column in zip(fields(VmMeasurement), latest.T, strict=True)}
            measured = Measured(host_cpu=np.ascontiguousarray(host_cpu),
                                host_load_per_cpu=np.ascontiguousarray(host_load), **vm_columns)
            return _Snapshot(version, self._clock(),
                             Tracked.build(hosts, vms, measured, pinned, self._cluster_label))
        tracked = current.tracked
        for change in changes:
            self._give_way()
            tracked = tracked.with_change(change)
            sampled_hosts.update(h.id for h in change.hosts)  # a pushed host or VM is read again
            sampled_vms.update(v.id for v in change.vms)
        host_ids, ids = list(sampled_hosts), list(sampled_vms)
        hosts_measured, vms_measured = self._hosts_latest(host_ids), self._vms_latest(ids)
        self._give_way()
        tracked = tracked.with_measured_rows(host_ids, hosts_measured, ids, vms_measured)
        self._give_way()
        return _Snapshot(version, self._clock() if samples else current.made_at, tracked.with_pinned(pinned))

    def _vms_latest(self, ids: Sequence[str]) -> FloatArray:
        """VM_MEASURES of each VM, a row each in the order of `ids`, NaN where not measured (a memory in use of 0 is
        none); read a piece at a time, giving way between pieces. (A blind dirty rate is judged with the arrays,
        advisor.planning.engine.domain_arrays, as advice judges it.)"""
        values = np.empty((len(ids), len(VM_MEASURES)))
        for start in range(0, len(ids), READ_PIECE):
            self._give_way()
            piece = ids[start : start + READ_PIECE]
            values[start : start + len(piece)] = self._samples.vms_latest(piece, VM_MEASURES)
        values[~(values[:, 1] > 0), 1] = NAN
        return values

    def _hosts_latest(self, ids: Sequence[str]) -> FloatArray:
        """HOST_MEASURES of each host, a row each in the order of `ids`, NaN where not measured."""
        return self._samples.hosts_latest_values(ids, HOST_MEASURES)

    def _give_way(self) -> None:
        """Let urgent calls in flight finish first (advisor.usecases.priority), unless one waits for `_writing`."""
        self._priority.give_way(unless=lambda: self._wanted > 0)

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Hold `_writing`; a writer giving way meanwhile (it holds it) is woken to hand it over sooner."""
        with self._wanted_lock:
            self._wanted += 1
        self._priority.wake()
        self._writing.acquire()
        with self._wanted_lock:
            self._wanted -= 1
        try:
            yield
        finally:
            self._writing.release()

    def _swap(self, *, samples: bool = True) -> ClusterArrays:
        """Prepare the next snapshot and make it current (holding `_writing`); `samples`: as `_next`'s."""
        self._current = self._next(samples=samples)
        return self._current.tracked.arrays

    def fresh(self, forecast: Forecast | None = None) -> ClusterArrays:
        """A snapshot of now (for plans), with each VM's CPU forecast from its recent samples if `forecast`."""
        with self._writer():
            arrays = self._swap()
        return arrays if forecast is None else self._forecast(arrays, forecast)

    def _forecast(self, arrays: ClusterArrays, f: Forecast) -> ClusterArrays:
        """`arrays` with each sampled VM's CPU its forecast and spread (forecast.py), in cores."""
        history, have = self._samples.vms_newest(arrays.vm_ids, "cpu_utilization", f.samples)  # newest first
        history = np.nan_to_num(history)  # past the oldest: read by no forecast (`have` says how many)
        rows = np.flatnonzero(have > 0)
        planned, spread = forecast_utilization(history[rows, 0], history[rows], have[rows], f)
        vcpus = arrays.vm_vcpus[rows]
        return with_forecast(arrays, rows, planned * vcpus, spread * vcpus)

    def current(self) -> ClusterArrays:
        """A snapshot of the inventory as it is now, its samples at most `max_age_s` old: the one at hand, or
        one with the inventory's changes since, its samples read again only if they are too old (a placement
        under a steady push needs the one VM relabelled, not the thousands of VMs sampled since)."""
        current = self._current
        if current is not None and current.version == self._inventory.version:
            return self.get()
        with self._writer():
            current = self._current
            young = current is not None and self._clock() - current.made_at <= self._max_age_s
            return self._swap(samples=not young)

    def get(self) -> ClusterArrays:
        """The snapshot at hand, updated first if there is none yet, in the background if it is stale."""
        current = self._current
        if current is None:
            return self._first()
        stale = current.version != self._inventory.version or self._clock() - current.made_at > self._max_age_s
        if stale and self._writing.acquire(blocking=False):
            def update() -> None:
                try:
                    self._swap()
                finally:
                    self._writing.release()

            threading.Thread(target=update, name="snapshot", daemon=True).start()
        return current.tracked.arrays

    def _first(self) -> ClusterArrays:
        """The first snapshot: built by the first caller, and every caller waiting meanwhile takes that one."""
        with self._writer():
            current = self._current
            return self._swap() if current is None else current.tracked.arrays
