"""One block of the series store (advisor.features.series_store): the rings of `CHUNK_ROWS` entities in a few
arrays, so that an entity costs its data and a few bytes of bookkeeping, not a handful of Python objects."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CHUNK_ROWS = 512  # entities per block: a new block is allocated whole, never copied to grow

FloatArray = npt.NDArray[np.floating]


class Chunk:
    """`CHUNK_ROWS` rings; row i's samples in time order are positions start[i], start[i] + 1, ... (mod capacity),
    count[i] of them; gaps[i, p] is the code of the gap from the sample before p to p's (that of the oldest is not
    read); columns[field] holds the field's values (None: no sample of the block measured it, all NaN), and
    newest[i, field] is the position of the newest sample that measured the field (-1: none)."""

    __slots__ = ("columns", "count", "first_ms", "gaps", "last_ms", "marks", "newest", "start")

    def __init__(self, capacity: int, n_fields: int) -> None:
        self.first_ms = np.zeros(CHUNK_ROWS, dtype=np.int64)  # time of the oldest sample, ms since the epoch
        self.last_ms = np.zeros(CHUNK_ROWS, dtype=np.int64)  # and of the newest
        self.gaps = np.zeros((CHUNK_ROWS, capacity), dtype=np.uint16)
        self.columns: list[FloatArray | None] = [None] * n_fields
        self.start = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.count = np.zeros(CHUNK_ROWS, dtype=np.int32)
        self.newest = np.full((CHUNK_ROWS, n_fields), -1, dtype=np.int32)
        self.marks = np.zeros(CHUNK_ROWS, dtype=np.uint8)
