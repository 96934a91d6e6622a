"""training.few_shot's floor: the in-sample error of a profile calibrated on every migration, with the first pass
estimated from memory in use and with the non-zero pages given as measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

from advisor.ml.profiles import PRIOR, physics
from training import few_shot
from training.cost_data import DEFAULT_LAB_DATA, as_serving_reads_memory


def _lab_made_by_the_physics() -> pd.DataFrame:
    """Forty completed lab migrations whose measured figures are the default physics' over their non-zero pages:
    the physics' form leaves nothing once the first pass is known."""
    lab = as_serving_reads_memory(pd.read_csv(DEFAULT_LAB_DATA), DEFAULT_LAB_DATA)
    lab = lab[(lab["outcome"] == "completed") & lab["nonzero_mib"].gt(lab["memory_used_mib"] * 1.2)].head(40).copy()
    measured = lab.assign(nonzero_memory_mib=lab["nonzero_mib"])
    made = physics(few_shot.table(measured, "x"), dict(PRIOR))
    lab["total_time_ms"], lab["downtime_ms"] = made.total_time_ms, made.downtime_ms
    lab["transferred_kib"] = made.transferred_mib * 1024.0
    return lab


def test_the_floor_separates_the_first_pass_estimate_from_the_rest_of_the_physics() -> None:
    lab = _lab_made_by_the_physics()
    assert len(lab) == 40
    rows = few_shot.floor(lab).splitlines()
    assert rows[0].startswith("| first pass from | precopy |") and len(rows) == 4
    in_use, measured = (float(r.rstrip(" |").rsplit("|", 1)[1].strip().rstrip("%")) for r in rows[2:])
    assert rows[3].startswith("| non-zero pages, measured |") and measured <= 1.0
    assert in_use > measured
    assert np.isfinite(in_use)
