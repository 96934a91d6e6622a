"""A broad grid of migrations: every technique, memory 64 MiB-64 GiB, dirty rates from 0 to three times the
usable bandwidth, caps below and above the link, short to long allowed downtimes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from advisor.domain.model import Technique
from advisor.physics import TECHNIQUES, FloatArray, IntArray, analytic_arrays

P, AUTO, XBZRLE, COMPRESS, POST = (TECHNIQUES.index(t) for t in (
    Technique.PRECOPY, Technique.PRECOPY_AUTOCONVERGE, Technique.PRECOPY_XBZRLE, Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY))

MEMORY_MIB = (64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0)
DIRTY_OVER_USABLE = (0.0, 0.05, 0.3, 0.6, 0.9, 1.0, 1.2, 3.0)
LINK_AND_CAP_MIB_S = ((100.0, 100.0), (1000.0, 25.0), (30.0, 1000.0))
DOWNTIME_MS = (30.0, 300.0, 2000.0)


def grid() -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """(technique code, memory, dirty rate, link, cap, allowed downtime) per row, in a fixed order."""
    rows = list(itertools.product(range(len(TECHNIQUES)), MEMORY_MIB, DIRTY_OVER_USABLE, LINK_AND_CAP_MIB_S,
                                  DOWNTIME_MS))
    code = np.array([r[0] for r in rows], dtype=np.int64)
    memory = np.array([r[1] for r in rows])
    link = np.array([r[3][0] for r in rows])
    cap = np.array([r[3][1] for r in rows])
    dirty = np.array([r[2] for r in rows]) * np.minimum(link, cap)
    downtime = np.array([r[4] for r in rows])
    return code, memory, dirty, link, cap, downtime


EXPECTED = Path(__file__).with_name("grid_expected.csv")
COLUMNS = ("total_time_ms", "downtime_ms", "transferred_mib", "converges", "rounds")


def write_expected() -> None:
    """Freeze the physics' figures on the grid (run `python -m tests.unit.physics.grid` only when a change of the
    physics is meant, with a retrain of the learned models, which read them as features)."""
    a = analytic_arrays(*grid())
    table = np.column_stack([getattr(a, name).astype(np.float64) for name in COLUMNS])
    np.savetxt(EXPECTED, table, fmt=("%.10g", "%.10g", "%.10g", "%d", "%d"), delimiter=",",
               header=",".join(COLUMNS) + "  (rows in the order of tests/unit/physics/grid.py)")


if __name__ == "__main__":
    write_expected()
