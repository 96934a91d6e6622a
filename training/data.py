"""The shared SNU live-migration data: where it is, how it is read, and its fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.features.inputs import INPUT_COLUMNS
from advisor.ml.cost_features import TECHNIQUE_CODE

# Relative to the project root, as the data README says; overridable with --data.
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "migrations" / "snu-live-migrations.csv"
TARGET_COLUMNS = ("total_time_ms", "downtime_ms", "transferred_kib")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_migrations(path: Path) -> pd.DataFrame:
    """Read the CSV, check it, and add `transferred_mib` (the unit the advisor predicts in)."""
    frame = pd.read_csv(path)
    missing = [c for c in (*INPUT_COLUMNS, "workload", *TARGET_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    unknown = sorted(set(frame["technique"]) - set(TECHNIQUE_CODE))
    if unknown:
        raise ValueError(f"{path}: unknown techniques {unknown}")
    numeric = frame[[*INPUT_COLUMNS[1:], *TARGET_COLUMNS]].to_numpy(dtype=np.float64)
    if not np.isfinite(numeric).all() or (numeric < 0).any():
        raise ValueError(f"{path}: non-finite or negative values")
    frame["technique"] = frame["technique"].astype(str)
    frame["workload"] = frame["workload"].astype(str)
    frame["transferred_mib"] = frame["transferred_kib"] / 1024.0
    return frame.reset_index(drop=True)
