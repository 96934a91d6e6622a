"""Recent samples saved in the database, so that a restarted advisor still knows what its VMs were doing (an
unknown dirty rate would otherwise look like an idle guest). Arrays are stored as raw little-endian bytes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from advisor.adapters.sql.database import Database
from advisor.features.samples import Series

SAVE_CHUNK = 200  # entities saved per transaction (about 5 ms)


class SampleArchive:
    def __init__(self, database: Database) -> None:
        self._db = database

    def save(self, series: Iterable[Series]) -> int:
        """Replace the saved samples of each entity given; an entity with no samples is deleted. A transaction per
        chunk: the database's lock, which every call's authentication and every recommendation take, is never
        held for the whole (tens of MB for 20,000 VMs); each entity's row is whole either way."""
        rows = list(series)
        for start in range(0, len(rows), SAVE_CHUNK):
            chunk = rows[start:start + SAVE_CHUNK]
            with self._db.transaction() as db:
                db.executemany("DELETE FROM samples WHERE kind = ? AND entity_id = ?",
                               [(s.kind, s.entity_id) for s in chunk if len(s.times) == 0])
                db.executemany(
                    "INSERT INTO samples (kind, entity_id, times, vals) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (kind, entity_id) DO UPDATE SET times = excluded.times, vals = excluded.vals",
                    [(s.kind, s.entity_id, s.times.astype("<f8").tobytes(),
                      np.ascontiguousarray(s.values, dtype="<f4").tobytes()) for s in chunk if len(s.times)])
        return len(rows)

    def load(self, fields: dict[str, int]) -> list[Series]:
        """Every saved series; `fields` is the number of fields per kind (what the arrays are reshaped to)."""
        with self._db.reading() as db:
            rows = db.execute("SELECT kind, entity_id, times, vals FROM samples").fetchall()
        out = []
        for kind, entity_id, times_b, vals_b in rows:
            times = np.frombuffer(times_b, dtype="<f8").astype(np.float64)
            width = fields.get(kind)
            vals = np.frombuffer(vals_b, dtype="<f4").astype(np.float32)
            saved = len(vals) // len(times) if len(times) else 0
            if width is None or not 0 < saved <= width or len(vals) != len(times) * saved:
                continue
            # saved before fields were added at the end: those are not measured (NaN)
            values = np.full((len(times), width), np.nan, dtype=np.float32)
            values[:, :saved] = vals.reshape(len(times), saved)
            out.append(Series(kind, entity_id, times, values))
        return out
