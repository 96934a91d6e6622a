"""The recent samples of one kind of entity (hosts or VMs), every entity a row of one block.

Each entity keeps a ring of its last `capacity` samples (time plus one float32 column per metric, NaN for "not
measured") in a row of arrays shared by `CHUNK_ROWS` entities, so that an entity costs its data and a few bytes of
bookkeeping, not a handful of Python objects; a removed entity's row is reused.

Times are kept as whole milliseconds (rounded to the nearest), as int32 offsets from a per-row origin, so a row's
samples lie within `SPAN_MS` (24.8 days) of each other: a sample pushes out those more than that older, as if the
ring were full. Readers need far less: the dirty-rate forecaster's window is 60 s (its EWMA's time constant 15 s,
its shortest span 10 s), and samples come seconds apart. Samples arriving out of order are slotted into place; a
sample in the same millisecond as a stored one replaces it. Not thread-safe: `RecentSamples` locks around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CHUNK_ROWS = 512  # entities per block: a new block is allocated whole, never copied to grow
SPAN_MS = 2**31 - 1  # int32 offsets: the widest span of one row's samples
UNSAVED, UNREAD = 1, 2  # marks of an entity changed since `take_marked` (export, snapshot)


@dataclass(frozen=True)
class Latest:
    """The newest measured value of one metric and when it was measured."""

    value: float
    time_s: float


class _Chunk:
    """`CHUNK_ROWS` rings; row i's samples in time order are positions start[i], start[i] + 1, ... (mod capacity),
    count[i] of them, and newest[i, field] is the position of the newest that measured the field (-1: none)."""

    __slots__ = ("base_ms", "count", "marks", "newest", "offsets", "start", "values")

    def __init__(self, capacity: int, n_fields: int) -> None:
        self.base_ms = np.zeros(CHUNK_ROWS, dtype=np.int64)  # the row's origin (ms since the Unix epoch), at or
        self.offsets = np.empty((CHUNK_ROWS, capacity), dtype=np.int32)  # before its oldest sample; ms after it
        self.values = np.empty((CHUNK_ROWS, capacity, n_fields), dtype=np.float32)
        self.start = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.count = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.newest = np.full((CHUNK_ROWS, n_fields), -1, dtype=np.int32)
        self.marks = np.zeros(CHUNK_ROWS, dtype=np.uint8)


def _ms(time_s: float) -> int:
    return round(time_s * 1000.0)


class SeriesStore:
    """Recent samples of one kind of entity (hosts or VMs), `capacity` per entity."""

    def __init__(self, fields: Sequence[str], capacity: int = 120) -> None:
        if not 1 <= capacity <= 2**31 - 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        self.fields = tuple(fields)
        self.capacity = capacity
        self._rows: dict[str, int] = {}
        self._ids: list[str | None] = []  # by row; None for a free row
        self._free: list[int] = []
        self._chunks: list[_Chunk] = []
        self._gone: dict[int, set[str]] = {UNSAVED: set(), UNREAD: set()}  # forgotten since taken, per mark

    def _row(self, entity_id: str) -> int:
        row = self._rows.get(entity_id)
        if row is None:
            if not self._free:
                self._chunks.append(_Chunk(self.capacity, len(self.fields)))
                self._free = list(range(len(self._ids) + CHUNK_ROWS - 1, len(self._ids) - 1, -1))
                self._ids.extend([None] * CHUNK_ROWS)
            row = self._rows[entity_id] = self._free.pop()
            self._ids[row] = entity_id
        return row

    def add(self, entity_id: str, time_s: float, values: Sequence[float | None], *, mark: bool = True) -> None:
        """Add one sample (None: not measured); `mark` it as changed for `take_marked` (unless restoring)."""
        row = self._row(entity_id)
        c, i, cap = self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS, self.capacity
        if mark:
            c.marks[i] = UNSAVED | UNREAD
        t_ms, vals = _ms(time_s), [math.nan if v is None else v for v in values]
        start, count = int(c.start[i]), int(c.count[i])
        if count == 0:
            c.base_ms[i] = t_ms
        elif not int(c.offsets[i, (start + count - 1) % cap]) < t_ms - int(c.base_ms[i]) <= SPAN_MS:
            self._insert(c, i, t_ms, vals)  # out of order, at a time held, or beyond the row's span
            return
        pos = (start + count) % cap
        c.offsets[i, pos] = t_ms - c.base_ms[i]
        c.values[i, pos] = vals
        newest = c.newest[i]
        for field, value in enumerate(vals):
            if not math.isnan(value):  # measured: the newest now
                newest[field] = pos
            elif newest[field] == pos:  # its newest was the oldest sample, which this one replaces
                newest[field] = -1
        if count < cap:
            c.count[i] = count + 1
        else:
            c.start[i] = (start + 1) % cap

    def add_many(self, entity_ids: Sequence[str], times_s: Sequence[float],
                 rows: Sequence[Sequence[float | None]]) -> None:
        """`add` for each sample in turn, with the same outcome; a sample that goes after its entity's newest (the
        usual case) is stored with the others of its block at once, in a few array operations."""
        rows_of = np.array([self._row(entity_id) for entity_id in entity_ids], dtype=np.int64)
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `_ms`
        vals = np.asarray(rows, dtype=np.float64).astype(np.float32)  # None: NaN
        seen, counts = np.unique(rows_of, return_counts=True)
        once = np.isin(rows_of, seen[counts == 1])  # an entity's several samples go one by one, in order
        one_by_one = np.flatnonzero(~once).tolist()
        for chunk in np.unique(rows_of[once] // CHUNK_ROWS).tolist():
            at = np.flatnonzero(once & (rows_of // CHUNK_ROWS == chunk))
            appended = self._append(self._chunks[chunk], rows_of[at] % CHUNK_ROWS, t_ms[at], vals[at])
            one_by_one += at[~appended].tolist()
        for k in sorted(one_by_one):
            self.add(entity_ids[k], float(times_s[k]), rows[k])

    def _append(self, c: _Chunk, i: npt.NDArray[np.int64], t_ms: npt.NDArray[np.int64],
                vals: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Store the samples (of distinct rows `i`) that go after their row's newest within its span, as `add`
        does; returns which did."""
        cap, start, count = self.capacity, c.start[i], c.count[i]
        empty = count == 0
        base = np.where(empty, t_ms, c.base_ms[i])
        offset = t_ms - base
        fits: npt.NDArray[np.bool_] = empty | ((offset > c.offsets[i, (start + count - 1) % cap]) & (offset <= SPAN_MS))
        i, offset, vals, start, count, base = i[fits], offset[fits], vals[fits], start[fits], count[fits], base[fits]
        pos = (start + count) % cap
        c.base_ms[i] = base
        c.offsets[i, pos] = offset
        c.values[i, pos] = vals
        newest = c.newest[i]
        c.newest[i] = np.where(~np.isnan(vals), pos[:, None], np.where(newest == pos[:, None], -1, newest))
        full = count == cap
        c.count[i] = np.where(full, count, count + 1)
        c.start[i] = np.where(full, (start + 1) % cap, start)
        c.marks[i] = UNSAVED | UNREAD
        return fits

    def _ordered_ms(self, c: _Chunk, i: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        idx = (int(c.start[i]) + np.arange(int(c.count[i]))) % self.capacity
        return c.offsets[i, idx] + c.base_ms[i], c.values[i, idx]

    def _insert(self, c: _Chunk, i: int, t_ms: int, row: list[float]) -> None:
        times, values = self._ordered_ms(c, i)
        k = int(np.searchsorted(times, t_ms))
        if k < len(times) and times[k] == t_ms:
            values[k] = row
        else:
            times = np.insert(times, k, t_ms)
            values = np.insert(values, k, np.asarray(row, dtype=np.float32), axis=0)
        self._place(c, i, times, values)

    def put_series(self, entity_id: str, times_s: npt.NDArray[np.float64], values: npt.NDArray[np.float32]) -> None:
        """An entity with no samples yet given a whole series at once (a restart's restore), as `add` of each
        sample in turn would leave it, unmarked; an entity that has samples gets them one by one."""
        where = self._where(entity_id)
        if where is not None and int(where[0].count[where[1]]) > 0:
            for time_s, row in zip(times_s, values, strict=True):
                self.add(entity_id, float(time_s), [None if np.isnan(v) else float(v) for v in row], mark=False)
            return
        if len(times_s) == 0:
            return
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `_ms`
        order = np.argsort(t_ms, kind="stable")
        t_ms, rows = t_ms[order], np.asarray(values, dtype=np.float32)[order]
        last = np.r_[t_ms[1:] != t_ms[:-1], True]  # a time held twice: the later sample replaces it, as in `add`
        row = self._row(entity_id)
        self._place(self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS, t_ms[last], rows[last])

    def put_many(self, entity_ids: Sequence[str], times_s: npt.NDArray[np.float64],
                 values: npt.NDArray[np.float32]) -> None:
        """`put_series` of many entities, each with a series of the same length (times_s[entity, sample],
        values[entity, sample, field]); new entities whose times rise (the saved case) are put at once, in a few
        array operations per block, the others one by one."""
        if times_s.shape[1] == 0:
            return
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `_ms`
        keep = min(t_ms.shape[1], self.capacity)
        regular = (np.diff(t_ms, axis=1) > 0).all(axis=1) & (t_ms[:, -1] - t_ms[:, -keep] <= SPAN_MS)
        first = {entity_id: n for n, entity_id in reversed(list(enumerate(entity_ids)))}  # an id given twice
        at_once = [n for n in np.flatnonzero(regular).tolist()
                   if first[entity_ids[n]] == n and entity_ids[n] not in self._rows]
        rows = np.array([self._row(entity_ids[n]) for n in at_once], dtype=np.int64)
        times, vals = t_ms[at_once, -keep:], np.asarray(values, dtype=np.float32)[at_once, -keep:]
        blocks = rows // CHUNK_ROWS
        for block in np.unique(blocks).tolist():
            k = np.flatnonzero(blocks == block)
            c, i, measured = self._chunks[block], rows[k] % CHUNK_ROWS, ~np.isnan(vals[k])
            c.base_ms[i] = times[k, 0]
            c.offsets[i, :keep] = times[k] - times[k, :1]
            c.values[i, :keep] = vals[k]
            c.start[i], c.count[i] = 0, keep
            newest = keep - 1 - np.argmax(measured[:, ::-1, :], axis=1)
            c.newest[i] = np.where(measured.any(axis=1), newest, -1)
        for n in sorted(set(range(len(entity_ids))) - set(at_once)):  # after: an id's second series follows
            self.put_series(entity_ids[n], times_s[n], values[n])

    def _place(self, c: _Chunk, i: int, times: npt.NDArray[np.int64], values: npt.NDArray[np.float32]) -> None:
        """Row `i` rewritten to hold `times` (sorted, distinct) and their values: the newest `capacity` of them
        within the span of the newest."""
        first = max(len(times) - self.capacity, int(np.searchsorted(times, times[-1] - SPAN_MS)))
        times, values = times[first:], values[first:]
        keep = len(times)
        c.base_ms[i] = times[0]
        c.offsets[i, :keep] = times - times[0]
        c.values[i, :keep] = values
        c.start[i], c.count[i] = 0, keep
        measured = ~np.isnan(values)
        last = keep - 1 - np.argmax(measured[::-1], axis=0)
        c.newest[i] = np.where(measured.any(axis=0), last, -1)

    def _where(self, entity_id: str) -> tuple[_Chunk, int] | None:
        row = self._rows.get(entity_id)
        return None if row is None else (self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS)

    def latest(self, entity_id: str, field: str) -> Latest | None:
        at = self._where(entity_id)
        if at is None:
            return None
        c, i = at
        column = self.fields.index(field)
        pos = int(c.newest[i, column])
        if pos < 0:
            return None
        return Latest(float(c.values[i, pos, column]), int(c.base_ms[i] + c.offsets[i, pos]) / 1000.0)

    def latest_values(self, entity_id: str, columns: Sequence[int]) -> list[float]:
        """The newest value of each field (by its column), NaN where there is none: `latest` without the times."""
        at = self._where(entity_id)
        if at is None:
            return [math.nan] * len(columns)
        c, i = at
        newest, values = c.newest[i].tolist(), c.values[i]
        return [math.nan if (pos := newest[col]) < 0 else float(values[pos, col]) for col in columns]

    def last_time(self, entity_id: str) -> float | None:
        at = self._where(entity_id)
        if at is None or not (count := int(at[0].count[at[1]])):
            return None
        c, i = at
        return int(c.base_ms[i] + c.offsets[i, (int(c.start[i]) + count - 1) % self.capacity]) / 1000.0

    def window(self, entity_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) in time order, copies; empty arrays for an unknown entity."""
        at = self._where(entity_id)
        if at is None:
            return np.empty(0), np.empty((0, len(self.fields)), dtype=np.float32)
        times_ms, values = self._ordered_ms(*at)
        return times_ms / 1000.0, values

    def forget(self, entity_id: str) -> None:
        """Drop the entity's samples; it counts as changed for every mark (even one never seen: its saved samples
        may be there to delete)."""
        for gone in self._gone.values():
            gone.add(entity_id)
        row = self._rows.pop(entity_id, None)
        if row is not None:
            c, i = self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS
            c.count[i] = c.start[i] = c.marks[i] = 0
            c.newest[i] = -1
            self._ids[row] = None
            self._free.append(row)

    def chunks(self) -> int:
        return len(self._chunks)

    def take_marked(self, mark: int, chunk: int) -> set[str]:
        """The entities of one block added to or forgotten since the last take of `mark` (the forgotten ones come
        with the first block), and clears the mark: a caller takes one block per hold of its lock."""
        out = set()
        if chunk == 0:
            out, self._gone[mark] = self._gone[mark], set()
        if chunk < len(self._chunks):
            marks = self._chunks[chunk].marks
            rows = np.flatnonzero(marks & mark)
            marks[rows] &= ~np.uint8(mark)
            base = chunk * CHUNK_ROWS
            out.update(entity_id for r in rows.tolist() if (entity_id := self._ids[base + r]) is not None)
        return out

    def ids(self) -> list[str]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def nbytes(self) -> int:
        """The arrays allocated (whole blocks, free rows included): counted without visiting them, since this runs
        after every push."""
        per_row = self.capacity * (4 + 4 * len(self.fields)) + 8 + 4 + 4 + 4 * len(self.fields) + 1
        return len(self._chunks) * CHUNK_ROWS * per_row
