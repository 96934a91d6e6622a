"""The store of recent samples as it was before its entities shared blocks (one ring of NumPy arrays per entity,
times in float64): the reference the block store is held to (tests/unit/features/test_series_store.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from advisor.features.series_store import Latest


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


class RingStore:
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
