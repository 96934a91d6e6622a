"""Real training data and the real training job, smaller: for tests of the job's plumbing and its promotion gate,
which prove nothing about the quality of the model trained, only that the job writes, gates and promotes it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.cost_data import DEFAULT_LAB_DATA
from training.splits import share_of

# About half the lab's configurations: aborted and completed migrations, locked and cross-validation parts, every
# memory size and technique remain, with enough completed migrations for the lab's corrections.
LAB_SHARE = 0.5
# A fifth of every model's trees (train_cost --trees; recorded in the card's train_config).
TREES = ("--trees", "0.2")


def lab_configurations(output: Path, share: float = LAB_SHARE, source: Path = DEFAULT_LAB_DATA) -> Path:
    """The lab's migrations of about `share` of its configurations, written to `output` (a CSV like `source`):
    each configuration (workload) whole or not at all, chosen by a hash of its name, the same on every run."""
    frame = pd.read_csv(source)
    chosen = frame["workload"].astype(str).map(lambda workload: share_of(workload, "test sample") < share)
    frame[chosen].to_csv(output, index=False)
    return output
