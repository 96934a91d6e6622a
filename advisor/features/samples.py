"""The recent samples of every host and VM the advisor keeps, safe to use from many threads.

Each kind of entity is one `SeriesStore` (advisor.features.series_store): a ring of the last `capacity` samples
per entity in shared blocks, so memory per tracked entity is fixed and small: see docs/benchmarks.md (memory) for
the figure. A VM's values are kept as float16 (`VM_UNITS`), within 0.05% of what was measured, far below the
noise of any of these measurements (a dirty rate from page sampling, a CPU share over seconds); a host's, fewer
by twenty, as float32 (a host's memory reaches 64 TiB, past what float16 holds in GiB).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from advisor.domain.model import HostSample, VmSample
from advisor.features.sample_columns import MEASURED, VmColumns
from advisor.features.series_store import UNREAD, UNSAVED, Latest, SeriesStore

__all__ = ["HOST_FIELDS", "VM_FIELDS", "Latest", "RecentSamples", "Series", "SeriesStore"]

HOST_FIELDS = ("cpu_utilization", "memory_used_mib", "network_rx_mib_s", "network_tx_mib_s", "power_w", "load_per_cpu")
# Fields are only ever added at the end: saved samples of fewer fields are restored with the new ones unmeasured.
VM_FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib", "disk_write_rate_mib_s",
             "resident_memory_mib")
# The unit each VM field is kept in: the fraction as it is, MiB and MiB/s in GiB (and GiB/s), so that what the
# checks let in (24 TiB of memory and 64 GiB more resident, 200,000 MiB/s) fits float16 (at most 65,504 units)
# with room to spare.
VM_UNITS = (1.0, 1024.0, 1024.0, 1024.0, 1024.0, 1024.0)
# VM fields only ever read as their newest value (a prediction's inputs, the cluster snapshot), never as a history
# (the forecasters read CPU, memory and dirty rate): a VM keeps their newest value alone, 2 bytes each instead of
# 240 (issue 17: at most 2 KiB per VM). In a VM's window they are NaN but in the sample that measured them last.
VM_NEWEST_ONLY = ("working_set_mib", "disk_write_rate_mib_s", "resident_memory_mib")
_MEASURED = [VM_FIELDS.index(name) for name in MEASURED]  # the columns of pushed VM samples, as stored

READ_CHUNK = 1000  # entities read per hold of the lock
WRITE_CHUNK = 250  # samples added per hold of the lock (about 1 ms)


def _latest_values(lock: threading.Lock, store: SeriesStore, ids: Sequence[str], fields: Sequence[str]
                   ) -> npt.NDArray[np.float64]:
    """values[entity, field] in the order of `ids`, NaN where none: read a chunk of ids at a time under the lock,
    so that samples coming in wait for one chunk at most; in the store's block order, so that a chunk reads a block
    or two (`SeriesStore.latest_values`)."""
    columns = [store.fields.index(name) for name in fields]
    with lock:
        order = store.block_order(ids)
    out = np.empty((len(ids), len(columns)))
    for start in range(0, len(ids), READ_CHUNK):
        at = order[start : start + READ_CHUNK]
        chunk = list(map(ids.__getitem__, at.tolist()))
        with lock:
            out[at] = store.latest_values(chunk, columns)
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
        self._vms = SeriesStore(VM_FIELDS, capacity, units=VM_UNITS, newest_only=VM_NEWEST_ONLY)

    @property
    def vm_fields(self) -> tuple[str, ...]:
        return self._vms.fields

    def add(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        """Add checked samples (validation is the caller's), a chunk per hold of the lock: a reader (a
        recommendation reading its VM's window) waits for one chunk at most, not for a batch of thousands."""
        host_samples, vm_samples = self.in_store_order(host_samples, vm_samples)
        for start in range(0, len(host_samples), WRITE_CHUNK):
            chunk = host_samples[start : start + WRITE_CHUNK]
            rows = [(hs.cpu_utilization, hs.memory_used_mib, hs.network_rx_mib_s, hs.network_tx_mib_s, hs.power_w,
                     hs.load_per_cpu) for hs in chunk]
            with self._lock:
                self._hosts.add_many([hs.host_id for hs in chunk], [hs.time_s for hs in chunk], rows)
        for start in range(0, len(vm_samples), WRITE_CHUNK):
            vm_chunk = vm_samples[start : start + WRITE_CHUNK]
            vm_rows = [(vs.cpu_utilization, vs.memory_used_mib, vs.dirty_rate_mib_s, vs.working_set_mib,
                        vs.disk_write_rate_mib_s, vs.resident_memory_mib) for vs in vm_chunk]
            with self._lock:
                self._vms.add_many([vs.vm_id for vs in vm_chunk], [vs.time_s for vs in vm_chunk], vm_rows)

    def add_vm_columns(self, columns: VmColumns) -> None:
        """`add` of checked VM samples given as columns, a chunk per hold of the lock, in the order given (a
        caller adding a batch in pieces orders it first: `vm_store_order`)."""
        values = np.full((len(columns), len(VM_FIELDS)), np.nan)
        values[:, _MEASURED] = columns.values
        for start in range(0, len(columns), WRITE_CHUNK):
            end = start + WRITE_CHUNK
            with self._lock:
                self._vms.add_many(columns.ids[start:end], columns.times_s[start:end], values[start:end])

    def vm_store_order(self, vm_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """The order of `in_store_order` for VM samples of these ids, as indices."""
        with self._lock:
            return self._vms.block_order(vm_ids)

    def in_store_order(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]
                       ) -> tuple[list[HostSample], list[VmSample]]:
        """The samples in the order that stores them fastest, a block of entities at a time
        (`SeriesStore.block_order`); each entity's keep their order. Whoever adds a batch in pieces orders it
        first: pieces in the order given would each touch every block."""
        with self._lock:
            host_order = self._hosts.block_order([hs.host_id for hs in host_samples]).tolist()
            vm_order = self._vms.block_order([vs.vm_id for vs in vm_samples]).tolist()
        return [host_samples[k] for k in host_order], [vm_samples[k] for k in vm_order]

    def host_latest(self, host_id: str, field: str) -> Latest | None:
        with self._lock:
            return self._hosts.latest(host_id, field)

    def vm_latest(self, vm_id: str, field: str) -> Latest | None:
        with self._lock:
            return self._vms.latest(vm_id, field)

    def hosts_latest(self, host_ids: Iterable[str], field: str) -> dict[str, float]:
        """The newest value of `field` per host, NaN where there is none."""
        ids = list(host_ids)
        return dict(zip(ids, _latest_values(self._lock, self._hosts, ids, (field,))[:, 0].tolist(), strict=True))

    def hosts_latest_values(self, host_ids: Sequence[str], fields: Sequence[str]) -> npt.NDArray[np.float64]:
        """The newest value of each of `fields` of each host, values[host, field] in the order of `host_ids`, NaN
        where there is none."""
        return _latest_values(self._lock, self._hosts, host_ids, fields)

    def vms_latest(self, vm_ids: Sequence[str], fields: Sequence[str]) -> npt.NDArray[np.float64]:
        """The newest value of each of `fields` of each VM, values[vm, field] in the order of `vm_ids`, NaN where
        there is none."""
        return _latest_values(self._lock, self._vms, vm_ids, fields)

    def take_updated(self) -> tuple[set[str], set[str]]:
        """The hosts and VMs whose samples changed (added or forgotten) since the last call: what a reader that
        keeps the latest values (the cluster snapshot) reads again. One such reader only: taking clears them."""
        return self._take(self._hosts, UNREAD), self._take(self._vms, UNREAD)

    def _take(self, store: SeriesStore, mark: int) -> set[str]:
        """A block per hold of the lock: samples coming in wait for one block at most."""
        out: set[str] = set()
        with self._lock:
            chunks = store.chunks()
        for chunk in range(max(chunks, 1)):
            with self._lock:
                out |= store.take_marked(mark, chunk)
        return out

    def host_last_time(self, host_id: str) -> float | None:
        with self._lock:
            return self._hosts.last_time(host_id)

    def vm_window(self, vm_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) of one VM in time order, fields as `vm_fields`; copies."""
        with self._lock:
            return self._vms.window(vm_id)

    def vm_windows(self, vm_ids: Sequence[str]) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]]:
        """`vm_window` of each VM, read a chunk of VMs at a time under the lock in the store's block order (a plan
        reads the windows of the thousands of VMs it moves); arrays that may share memory with each other."""
        with self._lock:
            order = self._vms.block_order(vm_ids).tolist()
        read: dict[int, tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]] = {}
        for start in range(0, len(order), READ_CHUNK):
            at = order[start : start + READ_CHUNK]
            with self._lock:
                read.update(zip(at, self._vms.windows([vm_ids[k] for k in at], self._vms.capacity), strict=True))
        return [read[k] for k in range(len(vm_ids))]

    def vms_newest(self, vm_ids: Sequence[str], field: str, n: int) -> tuple[npt.NDArray[np.float64],
                                                                            npt.NDArray[np.int64]]:
        """Per VM, its newest `n` values of `field` (newest first, NaN past the oldest) and how many there are."""
        with self._lock:
            return self._vms.newest(vm_ids, field, n)

    def forget(self, host_ids: Iterable[str] = (), vm_ids: Iterable[str] = ()) -> None:
        with self._lock:
            for host_id in host_ids:
                self._hosts.forget(host_id)
            for vm_id in vm_ids:
                self._vms.forget(vm_id)

    def export_changed(self, newest: int, between: Callable[[], None] = lambda: None) -> list[Series]:
        """The newest `newest` (at least 1) samples of every entity changed since the last export (an entity
        forgotten since comes with no samples), for saving, read a chunk of entities at once
        (`SeriesStore.windows`), `between` called before each chunk, outside the lock (to give way to calls a
        client waits on); what is exported is no longer 'changed'."""
        hosts, vms = sorted(self._take(self._hosts, UNSAVED)), sorted(self._take(self._vms, UNSAVED))
        out = []
        for kind, store, ids in (("host", self._hosts, hosts), ("vm", self._vms, vms)):  # as sorted by (kind, id)
            for start in range(0, len(ids), READ_CHUNK):  # a chunk per hold: samples coming in wait for one
                chunk = ids[start : start + READ_CHUNK]
                between()
                with self._lock:
                    windows = store.windows(chunk, newest)
                out += [Series(kind, entity_id, times, values)
                        for entity_id, (times, values) in zip(chunk, windows, strict=True)]
        return out

    def restore(self, series: Iterable[Series]) -> int:
        """Samples saved by `export_changed`, back in (a restart); returns the entities restored."""
        alike: dict[tuple[str, int], list[Series]] = {}  # by kind and length: each group put at once
        for item in series:
            fields = len((self._hosts if item.kind == "host" else self._vms).fields)
            if item.values.ndim != 2 or item.values.shape[1] != fields or len(item.times) != len(item.values):
                continue  # saved by a version with other fields: not to be guessed at
            alike.setdefault((item.kind, len(item.times)), []).append(item)
        with self._lock:
            for (kind, _), group in alike.items():
                store = self._hosts if kind == "host" else self._vms
                store.put_many([g.entity_id for g in group], np.stack([g.times for g in group]),
                               np.stack([g.values for g in group]))  # unmarked: neither to save nor news
        return sum(len(group) for group in alike.values())

    def nbytes(self) -> int:
        with self._lock:
            return self._hosts.nbytes() + self._vms.nbytes()


def warm_up() -> None:
    """Store a host and a VM sample once: the store's compiled loops (advisor.features.ring_kernels) are compiled,
    or read from numba's cache, at their first call, which the first push after a start would otherwise wait
    for."""
    samples = RecentSamples(capacity=2)
    samples.add([HostSample("h", 1e9, cpu_utilization=0.5)], [])
    samples.add_vm_columns(VmColumns(["v"], np.array([1e9]), np.array([[0.5] + [np.nan] * (len(MEASURED) - 1)])))
