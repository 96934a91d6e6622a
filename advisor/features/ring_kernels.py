"""Compiled loops that append samples to the rings of one block of the series store (advisor.features.series_block):
each sample in turn, as `SeriesStore.add` appends one, in one call per block instead of twenty NumPy calls per
block and round (issue 17: storing a pushed batch of 2,000 VM samples touched 40 blocks about twice each, 4.6 us of
interpreter time a sample, most of it those calls' own overhead on a few dozen rows).

Values are copied as their bits (float16 or float32 viewed as unsigned integers): what is stored is what NumPy's
encoding gave, to the bit.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from advisor.features import sample_times
from advisor.features.sample_times import MAX_GAP_MS

# sample_times' codes of the gaps between samples, compiled for the loops below: one rule for both ways of storing
_gap_code = numba.njit(cache=True, nogil=True)(sample_times.gap_code)
_gap_ms = numba.njit(cache=True, nogil=True)(sample_times.gap_ms)


@numba.njit(cache=True, nogil=True)
def append_times(first_ms: Any, last_ms: Any, gaps: Any, start: Any, count: Any, marks: Any, mark: int, i: Any,
                 t_ms: Any, pos: Any) -> None:  # pragma: no cover - compiled
    """Append the times of samples of rows `i` (ms), each in turn, where they go after their row's newest within
    MAX_GAP_MS (or the row is empty); `pos[k]` is where sample k went in its ring, or -1 if it did not fit: then
    neither did any later sample of its row (left for `SeriesStore.add`). Each row appended to gets `mark`."""
    cap = gaps.shape[1]
    stopped = np.zeros(first_ms.shape[0], dtype=np.bool_)
    for k in range(i.shape[0]):
        row, t, pos[k] = i[k], t_ms[k], -1
        n = count[row]
        if stopped[row]:
            continue
        if n == 0:  # the first sample
            at = start[row] = 0
            first_ms[row] = last_ms[row] = t
            gaps[row, at] = 0
            count[row] = 1
        else:
            gap = t - last_ms[row]
            if gap <= 0 or gap > MAX_GAP_MS:
                stopped[row] = True
                continue
            code, kept = _gap_code(gap)
            at = (start[row] + n) % cap
            if n == cap:  # the oldest leaves: the next is the oldest now
                if cap == 1:
                    first_ms[row] = last_ms[row] + kept
                else:
                    first_ms[row] += _gap_ms(gaps[row, (start[row] + 1) % cap])
                start[row] = (start[row] + 1) % cap
            else:
                count[row] = n + 1
            gaps[row, at] = code
            last_ms[row] += kept
        marks[row] = mark
        pos[k] = at


@numba.njit(cache=True, nogil=True)
def put_values(column: Any, newest: Any, i: Any, pos: Any, bits: Any, measured: Any) -> None:  # pragma: no cover
    """Write one field's values (`bits`) of the samples appended (`pos` not -1) into its column, in turn, and keep
    `newest` (the field's newest measured position per row) as `SeriesStore.add` does."""
    for k in range(i.shape[0]):
        at = pos[k]
        if at < 0:
            continue
        row = i[k]
        column[row, at] = bits[k]
        if measured[k]:
            newest[row] = at
        elif newest[row] == at:  # its newest was the oldest sample, which this one replaces
            newest[row] = -1


@numba.njit(cache=True, nogil=True)
def append(first_ms: Any, last_ms: Any, gaps: Any, start: Any, count: Any, marks: Any, mark: int, newest: Any,
           columns: Any, i: Any, t_ms: Any, bits: Any, measured: Any, pos: Any,
           unplaced: Any) -> None:  # pragma: no cover - compiled
    """`append_times`, then `put_values` of each field whose column is allocated (`columns`: one per field, an
    empty one where not): a field not allocated that a sample appended measures is left, `unplaced[field]` set,
    for the caller to allocate its column and put its values."""
    append_times(first_ms, last_ms, gaps, start, count, marks, mark, i, t_ms, pos)
    for field in range(len(columns)):
        column = columns[field]
        if column.shape[0]:
            put_values(column, newest[:, field], i, pos, bits[:, field], measured[:, field])
            continue
        for k in range(i.shape[0]):
            if pos[k] >= 0 and measured[k, field]:
                unplaced[field] = True
                break


@numba.njit(cache=True, nogil=True)
def put_newest(latest: Any, newest: Any, i: Any, pos: Any, bits: Any, measured: Any) -> None:  # pragma: no cover
    """`put_values` of a field whose newest value alone is kept (`latest`, one per row): a sample appended that
    measures it replaces it; one that does not, where it pushed out the sample that did, leaves none."""
    for k in range(i.shape[0]):
        at = pos[k]
        if at < 0:
            continue
        row = i[k]
        if measured[k]:
            latest[row] = bits[k]
            newest[row] = at
        elif newest[row] == at:
            newest[row] = -1
