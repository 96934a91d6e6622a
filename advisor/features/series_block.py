"""One block of the series store (advisor.features.series_store): the rings of `CHUNK_ROWS` entities in a few
arrays, so that an entity costs its data and a few bytes of bookkeeping, not a handful of Python objects. The
block reads and rewrites its rings; which entity a row is, and values' units, are the store's."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

from advisor.features.ring_kernels import append, put_newest, put_values
from advisor.features.sample_times import EXACT_GAP_MS, MAX_GAP_MS, gap_code, gaps_ms

CHUNK_ROWS = 512  # entities per block: a new block is allocated whole, never copied to grow
_NONE = {kind: np.empty((0, 0), dtype=kind) for kind in (np.uint16, np.uint32)}  # a column not allocated, to `append`

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.int64]


@functools.cache
def _positions(capacity: int) -> IntArray:
    """A row's positions in order from any start p: [p : p + count]."""
    return np.arange(2 * capacity) % capacity


class Chunk:
    """`CHUNK_ROWS` rings of `capacity` samples; row i's samples in time order are positions start[i],
    start[i] + 1, ... (mod capacity), count[i] of them; gaps[i, p] is the code of the gap from the sample before p
    to p's (that of the oldest is not read); columns[field] holds the field's values as `dtype` (None: no sample
    of the block measured it, all NaN), and newest[i, field] is the position of the newest sample that measured
    the field (-1: none). A field `newest_only` keeps no history, only that newest value: latest[field][i] (read
    where newest[i, field] is not -1), as if its other samples had not measured it. `nbytes` counts the arrays as
    they are allocated."""

    __slots__ = ("capacity", "columns", "count", "dtype", "first_ms", "gaps", "last_ms", "latest", "marks", "nbytes",
                 "newest", "start")

    def __init__(self, capacity: int, n_fields: int, dtype: type[np.floating], newest_only: tuple[int, ...] = ()
                 ) -> None:
        self.capacity, self.dtype = capacity, dtype
        self.first_ms = np.zeros(CHUNK_ROWS, dtype=np.int64)  # time of the oldest sample, ms since the epoch
        self.last_ms = np.zeros(CHUNK_ROWS, dtype=np.int64)  # and of the newest
        self.gaps = np.zeros((CHUNK_ROWS, capacity), dtype=np.uint16)
        self.columns: list[FloatArray | None] = [None] * n_fields
        self.start = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.count = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.newest = np.full((CHUNK_ROWS, n_fields), -1, dtype=np.int32)
        self.marks = np.zeros(CHUNK_ROWS, dtype=np.uint8)
        self.latest: dict[int, FloatArray] = {field: np.full(CHUNK_ROWS, np.nan, dtype=dtype) for field in newest_only}
        self.nbytes = sum(a.nbytes for a in (self.first_ms, self.last_ms, self.gaps, self.start, self.count,
                                             self.newest, self.marks)) + sum(a.nbytes for a in self.latest.values())

    def column(self, field: int) -> FloatArray:
        column = self.columns[field]
        if column is None:
            column = self.columns[field] = np.full((CHUNK_ROWS, self.capacity), np.nan, dtype=self.dtype)
            self.nbytes += column.nbytes
        return column

    def write(self, i: Any, pos: Any, encoded: FloatArray) -> None:
        """encoded[..., field] into the rows `i` (an index or indices) at `pos`: one position, or a slice of them
        (values[..., sample, field]); a column is allocated when a value measures it. The caller sets `newest`."""
        for field in range(len(self.columns)):
            column, value = self.columns[field], encoded[..., field]
            if field in self.latest:
                self._write_latest(field, i, pos, value)
                continue
            if column is None:
                if np.isnan(value).all():
                    continue
                column = self.column(field)
            column[i, pos] = value

    def _write_latest(self, field: int, i: Any, pos: Any, value: FloatArray) -> None:
        """`write` of a newest-only field: each row's newest measured value, if any (else it is left, unread: its
        `newest` stays or becomes -1)."""
        if not isinstance(pos, slice):  # one sample
            if not np.isnan(value):
                self.latest[field][i] = value
            return
        measured = ~np.isnan(value)
        last = value.shape[-1] - 1 - np.argmax(measured[..., ::-1], axis=-1)
        newest = np.take_along_axis(value, np.expand_dims(last, -1), axis=-1)[..., 0]
        self.latest[field][i] = np.where(measured.any(axis=-1), newest, self.latest[field][i])

    def at_newest(self, field: int, i: Any) -> FloatArray | None:
        """The stored values of a field in rows `i` at their newest measured position (rows whose `newest` is -1:
        anything); None where no sample of the block measured it."""
        if field in self.latest:
            values: FloatArray = self.latest[field][i]
            return values
        column = self.columns[field]
        return None if column is None else column[i, self.newest[i, field]]

    def append(self, i: IntArray, t_ms: IntArray, encoded: FloatArray, mark: int) -> npt.NDArray[np.bool_]:
        """Append samples of rows `i` (times in ms, values as stored), each in turn, where they go after their row's
        newest within MAX_GAP_MS, or the row is empty (`SeriesStore.add`'s usual case), marking their rows; returns
        which did not fit, nor any later sample of their row (left for `SeriesStore.add`). A column is allocated
        when a value appended measures it."""
        pos, unplaced = np.empty(len(i), dtype=np.int64), np.zeros(len(self.columns), dtype=np.bool_)
        kind = np.uint16 if self.dtype == np.float16 else np.uint32  # values copied as their bits
        bits, measured, none = encoded.view(kind), ~np.isnan(encoded), _NONE[kind]
        columns = tuple(none if column is None else column.view(kind) for column in self.columns)
        append(self.first_ms, self.last_ms, self.gaps, self.start, self.count, self.marks, mark, self.newest,
               columns, i, t_ms, bits, measured, pos, unplaced)
        for field in np.flatnonzero(unplaced).tolist():
            if field not in self.latest:
                put_values(self.column(field).view(kind), self.newest[:, field], i, pos, bits[:, field],
                           measured[:, field])
        for field, latest in self.latest.items():  # measured or not: a sample may push out the newest
            put_newest(latest.view(kind), self.newest[:, field], i, pos, bits[:, field], measured[:, field])
        return pos < 0

    def times(self, i: int) -> tuple[IntArray, IntArray]:
        """Row i's times (ms) in time order, and their positions."""
        start = int(self.start[i])
        idx = _positions(self.capacity)[start : start + int(self.count[i])]
        times = gaps_ms(self.gaps[i].take(idx)).cumsum()  # from the oldest's own code, which says nothing
        return times + (int(self.first_ms[i]) - int(times[0]) if len(times) else 0), idx

    def ordered(self, i: int) -> tuple[IntArray, FloatArray]:
        """Row i's times (ms) and stored values[time, field] (NaN in a column not allocated), in time order."""
        times, idx = self.times(i)
        values = np.full((len(idx), len(self.columns)), np.nan, dtype=self.dtype)
        for field, column in enumerate(self.columns):
            if column is not None:
                values[:, field] = column[i].take(idx)
        for field, latest in self.latest.items():  # NaN but where it was measured last
            if (at := int(self.newest[i, field])) >= 0:
                values[idx == at, field] = latest[i]
        return times, values

    def newest_samples(self, i: IntArray, n: int) -> tuple[IntArray, npt.NDArray[np.float32], IntArray]:
        """The newest `n` (at most) samples of each of the rows `i` at once: times[row, k] (ms) and stored
        values[row, k, field] as float32, oldest first and ending with the newest, and how many of the last
        columns are samples (the row's count, up to n; those before hold nothing to read)."""
        m = min(n, self.capacity)
        have = np.minimum(self.count[i], m).astype(np.int64)
        back = np.arange(m - 1, -1, -1)  # how far each column is from the newest sample
        pos = (self.start[i, None] + self.count[i, None] - 1 - back) % self.capacity
        gaps = gaps_ms(self.gaps[i[:, None], pos])
        after = np.cumsum(gaps[:, ::-1], axis=1)[:, ::-1] - gaps  # the gaps after each sample, to the newest
        values = np.full((len(i), m, len(self.columns)), np.nan, dtype=np.float32)
        for field, column in enumerate(self.columns):
            if field in self.latest:  # NaN but at its newest
                at_newest = pos == self.newest[i, field, None]
                values[:, :, field] = np.where(at_newest, self.latest[field][i, None], np.nan)
            elif column is not None:
                values[:, :, field] = column[i[:, None], pos]
        return self.last_ms[i, None] - after, values, have

    def place(self, i: int, times: IntArray, values: FloatArray) -> None:
        """Row `i` rewritten to hold `times` (sorted, distinct) and their stored values: the newest `capacity` of
        them since the last gap longer than MAX_GAP_MS, each time as its gap's code gives it."""
        times, values = times[-self.capacity:], values[-self.capacity:]
        gaps = np.diff(times)
        if (gaps <= EXACT_GAP_MS).all():  # the usual case: every time kept exactly
            codes, first = gaps.astype(np.uint16), 0
        else:
            held, first = int(times[0]), 0
            code_list: list[int] = []
            for k, t in enumerate(times[1:].tolist(), start=1):
                if t - held > MAX_GAP_MS:  # those before leave
                    held, code_list, first = t, [], k
                    continue
                code, gap = gap_code(t - held)
                held += gap
                code_list.append(code)
            codes = np.array(code_list, dtype=np.uint16)
        times, values = times[first:], values[first:]
        keep = len(times)
        self.first_ms[i], self.last_ms[i] = times[0], times[0] + gaps_ms(codes).sum()
        self.gaps[i, 0], self.gaps[i, 1:keep] = 0, codes
        self.write(i, slice(0, keep), values)
        self.start[i], self.count[i] = 0, keep
        measured = ~np.isnan(values)
        last = keep - 1 - np.argmax(measured[::-1], axis=0)
        self.newest[i] = np.where(measured.any(axis=0), last, -1)
