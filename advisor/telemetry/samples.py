"""A bounded in-memory store of recent samples per host and per VM.

Each entity keeps a ring of its last `capacity` samples in NumPy arrays (time plus one column per metric, NaN for
"not measured"), so memory per tracked entity is fixed and small: see README "Benchmarks" for the figure.
Samples arriving out of order are slotted into place; a sample with the same time as a stored one replaces it.
Not thread-safe: its owner serialises access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HOST_FIELDS = ("cpu_utilization", "memory_used_mib", "network_rx_mib_s", "network_tx_mib_s", "power_w")
VM_FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s")


@dataclass(frozen=True)
class Latest:
    """The newest measured value of one metric and when it was measured."""

    value: float
    time_s: float


class _Ring:
    __slots__ = ("count", "start", "times", "values")

    def __init__(self, capacity: int, n_fields: int) -> None:
        self.times = np.empty(capacity, dtype=np.float64)
        self.values = np.empty((capacity, n_fields), dtype=np.float32)
        self.start = 0
        self.count = 0

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

    def latest(self, field: int) -> Latest | None:
        cap = len(self.times)
        for k in range(self.count - 1, -1, -1):
            pos = (self.start + k) % cap
            value = float(self.values[pos, field])
            if not np.isnan(value):
                return Latest(value, float(self.times[pos]))
        return None


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

    def window(self, entity_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) in time order; empty arrays for an unknown entity."""
        ring = self._rings.get(entity_id)
        if ring is None:
            return np.empty(0), np.empty((0, len(self.fields)), dtype=np.float32)
        return ring.ordered()

    def forget(self, entity_id: str) -> None:
        self._rings.pop(entity_id, None)

    def __len__(self) -> int:
        return len(self._rings)

    def nbytes(self) -> int:
        return sum(r.times.nbytes + r.values.nbytes for r in self._rings.values())
