"""A bounded in-memory store of recent samples per host and per VM.

Each entity keeps a ring of its last `capacity` samples in NumPy arrays (time plus one column per metric, NaN for
"not measured"), so memory per tracked entity is fixed and small: see README "Benchmarks" for the figure.
Samples arriving out of order are slotted into place; a sample with the same time as a stored one replaces it.
`SeriesStore` is not thread-safe; `RecentSamples`, the store of hosts' and VMs' series the advisor keeps, is.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from advisor.domain.model import HostSample, VmSample

HOST_FIELDS = ("cpu_utilization", "memory_used_mib", "network_rx_mib_s", "network_tx_mib_s", "power_w")
VM_FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib")

READ_CHUNK = 1000  # entities read per hold of the lock
WRITE_CHUNK = 250  # samples added per hold of the lock (about 1 ms)
T = TypeVar("T")


@dataclass(frozen=True)
class Latest:
    """The newest measured value of one metric and when it was measured."""

    value: float
    time_s: float


class _Ring:
    """One entity's last samples in time order from `start` (a ring), and for each field the position of the
    newest sample that measured it (-1: none does), kept as samples come so that `latest` reads two cells."""

    __slots__ = ("count", "newest", "start", "times", "values")

    def __init__(self, capacity: int, n_fields: int) -> None:
        self.times = np.empty(capacity, dtype=np.float64)
        self.values = np.empty((capacity, n_fields), dtype=np.float32)
        self.start = 0
        self.count = 0
        self.newest = [-1] * n_fields

    def ordered(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        idx = (self.start + np.arange(self.count)) % len(self.times)
        return self.times[idx], self.values[idx]

    def add(self, time_s: float, row: Sequence[float]) -> None:
        cap = len(self.times)
        if self.count and time_s <= self.times[(self.start + self.count - 1) % cap]:
            self._insert(time_s, row)
            return
        pos = (self.start + self.count) % cap
        self.times[pos] = time_s
        self.values[pos] = row
        for field, value in enumerate(row):
            if not math.isnan(value):  # measured: the newest now
                self.newest[field] = pos
            elif self.newest[field] == pos:  # its newest was the oldest sample, which this one replaces
                self.newest[field] = -1
        if self.count < cap:
            self.count += 1
        else:
            self.start = (self.start + 1) % cap

    def _insert(self, time_s: float, row: Sequence[float]) -> None:
        times, values = self.ordered()
        i = int(np.searchsorted(times, time_s))
        if i < len(times) and times[i] == time_s:
            values[i] = row
        else:
            times = np.insert(times, i, time_s)
            values = np.insert(values, i, np.asarray(row, dtype=np.float32), axis=0)
        keep = min(len(times), len(self.times))
        self.times[:keep] = times[-keep:]
        self.values[:keep] = values[-keep:]
        self.start, self.count = 0, keep
        measured = ~np.isnan(self.values[:keep])
        last = keep - 1 - np.argmax(measured[::-1], axis=0)
        self.newest = np.where(measured.any(axis=0), last, -1).tolist()

    def latest(self, field: int) -> Latest | None:
        pos = self.newest[field]
        return None if pos < 0 else Latest(float(self.values[pos, field]), float(self.times[pos]))


class SeriesStore:
    """Recent samples of one kind of entity (hosts or VMs), `capacity` per entity."""

    def __init__(self, fields: Sequence[str], capacity: int = 120) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.fields = tuple(fields)
        self.capacity = capacity
        self._rings: dict[str, _Ring] = {}

    def add(self, entity_id: str, time_s: float, values: Sequence[float | None]) -> None:
        ring = self._rings.get(entity_id)
        if ring is None:
            ring = self._rings[entity_id] = _Ring(self.capacity, len(self.fields))
        ring.add(time_s, [np.nan if v is None else v for v in values])

    def latest(self, entity_id: str, field: str) -> Latest | None:
        ring = self._rings.get(entity_id)
        return None if ring is None else ring.latest(self.fields.index(field))

    def latest_values(self, entity_id: str, columns: Sequence[int]) -> list[float]:
        """The newest value of each field (by its column), NaN where there is none: `latest` without the times."""
        ring = self._rings.get(entity_id)
        if ring is None:
            return [math.nan] * len(columns)
        return [math.nan if (pos := ring.newest[c]) < 0 else float(ring.values[pos, c]) for c in columns]

    def window(self, entity_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) in time order; empty arrays for an unknown entity."""
        ring = self._rings.get(entity_id)
        if ring is None:
            return np.empty(0), np.empty((0, len(self.fields)), dtype=np.float32)
        return ring.ordered()

    def forget(self, entity_id: str) -> None:
        self._rings.pop(entity_id, None)

    def ids(self) -> list[str]:
        return list(self._rings)

    def __len__(self) -> int:
        return len(self._rings)

    def nbytes(self) -> int:
        """Every ring has the same fixed size: no need to visit them (this runs after every push)."""
        return len(self._rings) * self.capacity * (8 + 4 * len(self.fields))


def _latest_values(lock: threading.Lock, store: SeriesStore, ids: Iterable[str], fields: Sequence[str],
                   shape: Callable[[list[float]], T]) -> dict[str, T]:
    """Read a chunk of ids at a time under the lock, so that samples coming in wait for one chunk at most."""
    out: dict[str, T] = {}
    ids, columns = list(ids), [store.fields.index(name) for name in fields]
    for start in range(0, len(ids), READ_CHUNK):
        with lock:
            for entity_id in ids[start : start + READ_CHUNK]:
                out[entity_id] = shape(store.latest_values(entity_id, columns))
    return out


@dataclass(frozen=True)
class Series:
    """One entity's recent samples, as saved and restored: kind "host" or "vm", times, values[time, field]."""

    kind: str
    entity_id: str
    times: npt.NDArray[np.float64]
    values: npt.NDArray[np.float32]


class RecentSamples:
    """Recent samples of every host and VM, `capacity` each; safe to use from many threads."""

    def __init__(self, capacity: int = 120) -> None:
        self._lock = threading.Lock()
        self._hosts = SeriesStore(HOST_FIELDS, capacity)
        self._vms = SeriesStore(VM_FIELDS, capacity)
        self._changed: set[tuple[str, str]] = set()  # (kind, id) with samples not yet exported
        self._updated: tuple[set[str], set[str]] = set(), set()  # hosts, VMs not yet taken by `take_updated`

    @property
    def vm_fields(self) -> tuple[str, ...]:
        return self._vms.fields

    def add(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        """Add checked samples (validation is the caller's), a chunk per hold of the lock: a reader (a
        recommendation reading its VM's window) waits for one chunk at most, not for a batch of thousands."""
        for start in range(0, len(host_samples), WRITE_CHUNK):
            with self._lock:
                for hs in host_samples[start : start + WRITE_CHUNK]:
                    self._hosts.add(hs.host_id, hs.time_s, (hs.cpu_utilization, hs.memory_used_mib,
                                                            hs.network_rx_mib_s, hs.network_tx_mib_s, hs.power_w))
                    self._changed.add(("host", hs.host_id))
                    self._updated[0].add(hs.host_id)
        for start in range(0, len(vm_samples), WRITE_CHUNK):
            with self._lock:
                for vs in vm_samples[start : start + WRITE_CHUNK]:
                    self._vms.add(vs.vm_id, vs.time_s, (vs.cpu_utilization, vs.memory_used_mib, vs.dirty_rate_mib_s,
                                                        vs.working_set_mib))
                    self._changed.add(("vm", vs.vm_id))
                    self._updated[1].add(vs.vm_id)

    def host_latest(self, host_id: str, field: str) -> Latest | None:
        with self._lock:
            return self._hosts.latest(host_id, field)

    def vm_latest(self, vm_id: str, field: str) -> Latest | None:
        with self._lock:
            return self._vms.latest(vm_id, field)

    def hosts_latest(self, host_ids: Iterable[str], field: str) -> dict[str, float]:
        """The newest value of `field` per host, NaN where there is none."""
        return _latest_values(self._lock, self._hosts, host_ids, (field,), lambda values: values[0])

    def vms_latest(self, vm_ids: Iterable[str], fields: Sequence[str]) -> dict[str, tuple[float, ...]]:
        """The newest value of each of `fields` per VM, NaN where there is none."""
        return _latest_values(self._lock, self._vms, vm_ids, fields, tuple)

    def take_updated(self) -> tuple[set[str], set[str]]:
        """The hosts and VMs whose samples changed (added or forgotten) since the last call: what a reader that
        keeps the latest values (the cluster snapshot) reads again. One such reader only: taking clears them."""
        with self._lock:
            updated, self._updated = self._updated, (set(), set())
        return updated

    def host_last_time(self, host_id: str) -> float | None:
        with self._lock:
            times, _ = self._hosts.window(host_id)
        return float(times[-1]) if len(times) else None

    def vm_window(self, vm_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) of one VM in time order, fields as `vm_fields`; copies."""
        with self._lock:
            return self._vms.window(vm_id)

    def forget(self, host_ids: Iterable[str] = (), vm_ids: Iterable[str] = ()) -> None:
        with self._lock:
            for host_id in host_ids:
                self._hosts.forget(host_id)
                self._changed.add(("host", host_id))
                self._updated[0].add(host_id)
            for vm_id in vm_ids:
                self._vms.forget(vm_id)
                self._changed.add(("vm", vm_id))
                self._updated[1].add(vm_id)

    def export_changed(self, newest: int) -> list[Series]:
        """The newest `newest` samples of every entity changed since the last export (an entity forgotten since
        comes with no samples), for saving; what is exported is no longer 'changed'."""
        with self._lock:
            changed, self._changed = self._changed, set()
        out, ordered = [], sorted(changed)
        for start in range(0, len(ordered), READ_CHUNK):  # a chunk per hold: samples coming in wait for one
            with self._lock:
                for kind, entity_id in ordered[start : start + READ_CHUNK]:
                    store = self._hosts if kind == "host" else self._vms
                    times, values = store.window(entity_id)
                    out.append(Series(kind, entity_id, times[-newest:], values[-newest:]))
        return out

    def restore(self, series: Iterable[Series]) -> int:
        """Samples saved by `export_changed`, back in (a restart); returns the entities restored."""
        count = 0
        with self._lock:
            for item in series:
                store = self._hosts if item.kind == "host" else self._vms
                if item.values.ndim != 2 or item.values.shape[1] != len(store.fields):
                    continue  # saved by a version with other fields: not to be guessed at
                for time_s, row in zip(item.times, item.values, strict=True):
                    store.add(item.entity_id, float(time_s), [None if np.isnan(v) else float(v) for v in row])
                count += 1
        return count

    def nbytes(self) -> int:
        with self._lock:
            return self._hosts.nbytes() + self._vms.nbytes()
