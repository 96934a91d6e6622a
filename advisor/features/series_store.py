"""The recent samples of one kind of entity (hosts or VMs), every entity a row of one block.

Each entity keeps a ring of its last `capacity` samples in a row of arrays shared by `CHUNK_ROWS` entities, so that
an entity costs its data and a few bytes of bookkeeping, not a handful of Python objects; a removed entity's row is
reused. A sample costs (issue 17: at most 2 KiB per VM with 120 of them) two bytes for its time, the gap since the
sample before (advisor.features.sample_times: to the millisecond up to 32.767 s, else whole seconds rounded down;
a gap beyond 9.1 hours pushes out the samples before it, as if the ring were full), and per field measured four
bytes (float32) or, where the store is given `units`, two: float16 in the field's unit (a power of two, so that
the conversion is exact), 11 significant bits, within 0.05% of what was given (below 2**-14 units, within 2**-25
units). A field's column is allocated for a block once a sample of the block measures it: a field nobody measures
costs nothing. A field `newest_only` (one whose history nobody reads) keeps only its newest measured value, two
or four bytes per entity: it reads as if the store's other samples had not measured it. NaN stays NaN ("not
measured"). Samples arriving out of order are slotted into place; a sample in
the same millisecond as a stored one replaces it. Not thread-safe: `RecentSamples` locks around it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from advisor.features.sample_times import MAX_GAP_MS, gap_code, gap_codes, gap_ms, gaps_ms, kept_exactly
from advisor.features.series_block import CHUNK_ROWS, Chunk

UNSAVED, UNREAD = 1, 2  # marks of an entity changed since `take_marked` (export, snapshot)
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_FLOAT16_INF = 65520.0  # from here on a value rounds to float16's infinity

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Latest:
    """The newest measured value of one metric and when it was measured."""

    value: float
    time_s: float


class SeriesStore:
    """Recent samples of one kind of entity (hosts or VMs), `capacity` per entity; each field's values float32, or
    float16 in the field's unit where `units` (powers of two) are given: a value that float16 cannot hold in its
    unit is refused (ValueError); of the fields `newest_only`, only the newest value measured is kept."""

    def __init__(self, fields: Sequence[str], capacity: int = 120, *, units: Sequence[float] | None = None,
                 newest_only: Sequence[str] = ()) -> None:
        if not 1 <= capacity <= 2**31 - 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        if units is not None and (len(units) != len(fields) or any(math.frexp(u)[0] != 0.5 for u in units)):
            raise ValueError(f"units must be one power of two per field (got {units} for {len(fields)} fields)")
        self.fields = tuple(fields)
        self.newest_only = tuple(self.fields.index(name) for name in newest_only)
        self.capacity = capacity
        self._dtype = np.float32 if units is None else np.float16
        self._units = np.ones(len(fields), dtype=np.float32) if units is None else np.array(units, np.float32)
        self._per_unit = 1.0 / self._units.astype(np.float64)  # powers of two: exact
        self._unknown = np.full(capacity, np.nan, dtype=self._dtype)  # a row of a column not allocated
        self._rows: dict[str, int] = {}
        self._ids: list[str | None] = []  # by row; None for a free row
        self._free: list[int] = []
        self._chunks: list[Chunk] = []
        self._gone: dict[int, set[str]] = {UNSAVED: set(), UNREAD: set()}  # forgotten since taken, per mark

    def _row(self, entity_id: str) -> int:
        row = self._rows.get(entity_id)
        if row is None:
            if not self._free:
                self._chunks.append(Chunk(self.capacity, len(self.fields), self._dtype, self.newest_only))
                self._free = list(range(len(self._ids) + CHUNK_ROWS - 1, len(self._ids) - 1, -1))
                self._ids.extend([None] * CHUNK_ROWS)
            row = self._rows[entity_id] = self._free.pop()
            self._ids[row] = entity_id
        return row

    def _encode(self, values: Any) -> FloatArray:
        """Values (any shape ending in the fields; None or NaN: not measured) as stored: in their units, as the
        store's dtype."""
        given = np.asarray(values, dtype=np.float32 if getattr(values, "dtype", None) == np.float32 else np.float64)
        if self._dtype == np.float32:
            return given.astype(np.float32)
        scaled = given * self._per_unit.astype(given.dtype)  # powers of two: exact
        if (too_big := np.abs(scaled) >= _FLOAT16_INF).any():  # as float16: infinite
            field = int(np.argwhere(too_big)[0][-1])
            raise ValueError(f"{self.fields[field]} beyond {_FLOAT16_MAX * self._units[field]:g}, the most this "
                             f"store holds (got {given[too_big][0]:g})")
        return scaled.astype(np.float16)

    def add(self, entity_id: str, time_s: float, values: Sequence[float | None], *, mark: bool = True) -> None:
        """Add one sample (None: not measured); `mark` it as changed for `take_marked` (unless restoring)."""
        encoded = self._encode([math.nan if v is None else v for v in values])
        row = self._row(entity_id)
        c, i, cap = self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS, self.capacity
        if mark:
            c.marks[i] = UNSAVED | UNREAD
        t_ms, start, count = round(time_s * 1000.0), int(c.start[i]), int(c.count[i])
        if count == 0:
            c.place(i, np.array([t_ms]), encoded[None, :])
            return
        if not 0 < t_ms - int(c.last_ms[i]) <= MAX_GAP_MS:
            self._insert(c, i, t_ms, encoded)  # out of order, at a time held, or too long after the newest
            return
        code, gap = gap_code(t_ms - int(c.last_ms[i]))
        pos = (start + count) % cap
        if count == cap:  # the oldest leaves: the next is the oldest now
            successor = gap if cap == 1 else gap_ms(int(c.gaps[i, (start + 1) % cap]))  # cap 1: the new sample
            c.first_ms[i] = (c.last_ms[i] if cap == 1 else c.first_ms[i]) + successor
        c.gaps[i, pos] = code
        c.last_ms[i] += gap
        c.write(i, pos, encoded)
        newest = c.newest[i]
        for field, value in enumerate(encoded.tolist()):
            if not math.isnan(value):  # measured: the newest now
                newest[field] = pos
            elif newest[field] == pos:  # its newest was the oldest sample, which this one replaces
                newest[field] = -1
        if count < cap:
            c.count[i] = count + 1
        else:
            c.start[i] = (start + 1) % cap

    def block_order(self, entity_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """The indices of `entity_ids` with those of a block together (entities without samples first), each
        entity's in the order given: `add_many` does work per block it touches (about 15 us), so a batch
        added in slices, in this order, touches a block or two per slice instead of every block."""
        return np.argsort(self._known_rows(entity_ids) // CHUNK_ROWS, kind="stable")

    def _known_rows(self, entity_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each entity's row, -1 for one without samples."""
        return np.array(list(map(self._rows.get, entity_ids, repeat(-1))), dtype=np.int64)

    def _by_block(self, entity_ids: Sequence[str]) -> Iterator[tuple[Chunk, npt.NDArray[np.int64],
                                                                     npt.NDArray[np.int64]]]:
        """Per block holding some of `entity_ids`: the block, where its entities stand in `entity_ids` (each
        entity's places in order) and their rows in the block; entities without samples left out. A reader of many
        entities does its array work once per block, not once per entity."""
        rows = self._known_rows(entity_ids)
        known = np.flatnonzero(rows >= 0)
        known = known[np.argsort(rows[known], kind="stable")]  # a block's entities together
        blocks = rows[known] // CHUNK_ROWS
        for at in np.split(known, np.flatnonzero(np.diff(blocks)) + 1) if len(known) else ():
            yield self._chunks[int(rows[at[0]]) // CHUNK_ROWS], at, rows[at] % CHUNK_ROWS

    def add_many(self, entity_ids: Sequence[str], times_s: Sequence[float] | npt.NDArray[np.float64],
                 rows: Sequence[Sequence[float | None]] | FloatArray) -> None:
        """`add` for each sample in turn, with the same outcome. Samples that go after their entity's newest (the
        usual case) are appended a block at a time by a compiled loop (`Chunk.append`). An entity's sample that
        does not fit (out of order), and those after it, go to `add` one by one, after the others, in order."""
        if not len(entity_ids):
            return
        encoded = self._encode(rows)  # None: NaN
        rows_of = self._rows_of(entity_ids)
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `add`
        blocks = rows_of // CHUNK_ROWS
        by_block = np.argsort(blocks, kind="stable")  # each entity's samples in the order given
        left = np.zeros(len(rows_of), dtype=np.bool_)
        for at in np.split(by_block, np.flatnonzero(np.diff(blocks[by_block])) + 1):
            left[at] = self._chunks[int(blocks[at[0]])].append(rows_of[at] % CHUNK_ROWS, t_ms[at], encoded[at],
                                                               UNSAVED | UNREAD)
        for k in np.flatnonzero(left).tolist():
            self.add(entity_ids[k], float(times_s[k]), rows[k])

    def _rows_of(self, entity_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each entity's row, a new one for an entity without."""
        rows = self._known_rows(entity_ids)
        if (rows < 0).any():
            return np.array([self._row(entity_id) if row < 0 else row
                             for entity_id, row in zip(entity_ids, rows.tolist(), strict=True)], dtype=np.int64)
        return rows

    def _insert(self, c: Chunk, i: int, t_ms: int, row: FloatArray) -> None:
        times, values = c.ordered(i)
        k = int(np.searchsorted(times, t_ms))
        if k < len(times) and times[k] == t_ms:
            values[k] = row
        else:
            times = np.insert(times, k, t_ms)
            values = np.insert(values, k, row, axis=0)
        c.place(i, times, values)

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
        encoded = self._encode(values)
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `add`
        order = np.argsort(t_ms, kind="stable")
        t_ms, encoded = t_ms[order], encoded[order]
        last = np.r_[t_ms[1:] != t_ms[:-1], True]  # a time held twice: the later sample replaces it, as in `add`
        row = self._row(entity_id)
        self._chunks[row // CHUNK_ROWS].place(row % CHUNK_ROWS, t_ms[last], encoded[last])

    def put_many(self, entity_ids: Sequence[str], times_s: npt.NDArray[np.float64],
                 values: npt.NDArray[np.float32]) -> None:
        """`put_series` of many entities, each with a series of the same length (times_s[entity, sample],
        values[entity, sample, field]); new entities whose times rise by gaps kept exactly (the saved case) are
        put at once, in a few array operations per block, the others one by one."""
        if times_s.shape[1] == 0:
            return
        encoded = self._encode(values)
        t_ms = np.rint(np.asarray(times_s, dtype=np.float64) * 1000.0).astype(np.int64)  # as `add`
        keep = min(t_ms.shape[1], self.capacity)
        gaps = np.diff(t_ms[:, -keep:], axis=1)
        regular = (np.diff(t_ms, axis=1) > 0).all(axis=1) & kept_exactly(gaps).all(axis=1)
        first = {entity_id: n for n, entity_id in reversed(list(enumerate(entity_ids)))}  # an id given twice
        at_once = [n for n in np.flatnonzero(regular).tolist()
                   if first[entity_ids[n]] == n and entity_ids[n] not in self._rows]
        rows = np.array([self._row(entity_ids[n]) for n in at_once], dtype=np.int64)
        times, vals, codes = t_ms[at_once, -keep:], encoded[at_once, -keep:], gap_codes(gaps[at_once])[0]
        blocks = rows // CHUNK_ROWS
        for block in np.unique(blocks).tolist():
            k = np.flatnonzero(blocks == block)
            c, i, measured = self._chunks[block], rows[k] % CHUNK_ROWS, ~np.isnan(vals[k])
            c.first_ms[i], c.last_ms[i] = times[k, 0], times[k, -1]
            c.gaps[i, 1:keep] = codes[k]
            c.write(i, slice(0, keep), vals[k])
            c.start[i], c.count[i] = 0, keep
            newest = keep - 1 - np.argmax(measured[:, ::-1, :], axis=1)
            c.newest[i] = np.where(measured.any(axis=1), newest, -1)
        for n in sorted(set(range(len(entity_ids))) - set(at_once)):  # after: an id's second series follows
            self.put_series(entity_ids[n], times_s[n], values[n])

    def _where(self, entity_id: str) -> tuple[Chunk, int] | None:
        row = self._rows.get(entity_id)
        return None if row is None else (self._chunks[row // CHUNK_ROWS], row % CHUNK_ROWS)

    def latest(self, entity_id: str, field: str) -> Latest | None:
        at = self._where(entity_id)
        if at is None:
            return None
        c, i = at
        column = self.fields.index(field)
        pos = int(c.newest[i, column])
        values = c.at_newest(column, i)
        if pos < 0 or values is None:
            return None
        start, count, time_ms = int(c.start[i]), int(c.count[i]), int(c.last_ms[i])
        if (after := (pos - start) % self.capacity + 1) < count:  # not the newest sample: less the gaps after it
            time_ms -= int(gaps_ms(c.gaps[i].take((start + np.arange(after, count)) % self.capacity)).sum())
        return Latest(float(values) * float(self._units[column]), time_ms / 1000.0)

    def latest_values(self, entity_ids: Sequence[str], columns: Sequence[int]) -> npt.NDArray[np.float64]:
        """The newest value of each field (by its column) of each entity, values[entity, column], NaN where there
        is none: `latest` without the times, read a block at a time (a snapshot reads every VM sampled since the
        last: 40 ms at 20,000 VMs one by one)."""
        out = np.full((len(entity_ids), len(columns)), np.nan)
        for c, at, i in self._by_block(entity_ids):
            for k, column in enumerate(columns):
                measured = c.newest[i, column] >= 0
                if (values := c.at_newest(column, i[measured])) is not None:
                    out[at[measured], k] = values.astype(np.float64) * float(self._units[column])
        return out

    def newest(self, entity_ids: Sequence[str], field: str, n: int) -> tuple[npt.NDArray[np.float64],
                                                                             npt.NDArray[np.int64]]:
        """Per entity (a row each), the newest `n` values that measured `field`, newest first and NaN past the
        oldest, as `window` gives them, and how many there are: one read of every VM for a plan's forecast. An
        entity whose newest `n` samples (or all of them, if it has fewer) measured the field (the usual case) is
        read from those alone; the others from their whole ring."""
        column, cap = self.fields.index(field), self.capacity
        out = np.full((len(entity_ids), n), np.nan)
        if column in self.newest_only and n:  # its newest value is all there is
            out[:, 0] = self.latest_values(entity_ids, [column])[:, 0]
            return out, np.count_nonzero(~np.isnan(out), axis=1)
        unit, m = self._units[column], min(n, cap)
        for c, at, i in self._by_block(entity_ids):
            if (values := c.columns[column]) is None:
                continue
            head, full = self._newest_of(c, values, i, m)
            out[at[full], :m] = head[full] * unit
            if not full.all():
                rest = ~full
                ring = self._newest_of(c, values, i[rest], cap)[0]
                measured = np.argsort(np.isnan(ring), axis=1, kind="stable")[:, :m]  # measured ones first, in order
                out[at[rest], :m] = np.take_along_axis(ring, measured, axis=1) * unit
        return out, np.count_nonzero(~np.isnan(out), axis=1)

    def _newest_of(self, c: Chunk, values: FloatArray, i: npt.NDArray[np.int64], m: int
                   ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Rows i's newest m samples of a column (newest first, NaN past the oldest) as float32, and whether each
        row's samples among them all measured it (its NaN, if any, past its oldest sample: nothing older to read)."""
        back = np.arange(m)  # 0: the newest sample
        held = back < c.count[i, None]
        pos = (c.start[i, None] + c.count[i, None] - 1 - back) % self.capacity
        ring = np.where(held, values[i[:, None], pos], np.nan).astype(np.float32)
        full: npt.NDArray[np.bool_] = ~np.any(np.isnan(ring) & held, axis=1)
        return ring, full

    def last_time(self, entity_id: str) -> float | None:
        at = self._where(entity_id)
        if at is None or not int(at[0].count[at[1]]):
            return None
        return int(at[0].last_ms[at[1]]) / 1000.0

    def window(self, entity_id: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """(times, values[time, field]) in time order, copies; empty arrays for an unknown entity."""
        at = self._where(entity_id)
        if at is None:
            return np.empty(0), np.empty((0, len(self.fields)), dtype=np.float32)
        c, i = at
        times_ms, idx = c.times(i)
        rows = np.array([self._unknown if column is None else column[i] for column in c.columns], dtype=np.float32)
        for field, latest in c.latest.items():  # NaN but where it was measured last
            if (pos := int(c.newest[i, field])) >= 0:
                rows[field, pos] = latest[i]
        if self._dtype == np.float16:
            rows *= self._units[:, None]
        return times_ms / 1000.0, rows.T.take(idx, axis=0)

    def windows(self, entity_ids: Sequence[str], n: int) -> list[tuple[npt.NDArray[np.float64],
                                                                       npt.NDArray[np.float32]]]:
        """`window(entity_id)[-n:]` of each entity (n at least 1), read a block at a time in a few array
        operations (the save of every entity's samples); arrays that may share memory with each other."""
        if n < 1:
            raise ValueError(f"n must be at least 1 (got {n})")
        nothing = np.empty(0), np.empty((0, len(self.fields)), dtype=np.float32)  # an unknown entity's, as `window`
        out = [nothing] * len(entity_ids)
        for block, at, i in self._by_block(entity_ids):
            times_ms, values, have = block.newest_samples(i, n)
            if self._dtype == np.float16:
                values *= self._units
            times, m = times_ms / 1000.0, times_ms.shape[1]
            for k, row_times, row_values, count in zip(at.tolist(), times, values, have.tolist(), strict=True):
                out[k] = (row_times[m - count:], row_values[m - count:])
        return out

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
        """The arrays allocated (whole blocks, free rows included; the columns of the fields measured): counted as
        they are allocated, since this runs after every push."""
        return sum(c.nbytes for c in self._chunks)
