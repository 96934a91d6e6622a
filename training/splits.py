"""How migrations are split for evaluation, frozen by a hash of each group so that new data never reshuffles old.

A group is what is held out together: an SNU workload, a lab configuration (writer setting and memory), a
migration the advisor executed grouped by its VM, host pair and day (`outcome_group`). Each group's place follows
from its own name alone (sha256), never from which other groups exist:
- the locked test part: the rows whose `lock_group` hashes below LOCKED_SHARE. A lab or advisor row's lock group
  is its group; an SNU row's is its workload at one cap (seven workloads are too few to lock whole ones: the gate
  then sees unseen configurations of seen workloads, what must keep serving well). No training, tuning or
  cross-validation reads them (`training.cost_data.load_all` leaves them out); only the promotion gate does
  (`training.cost_data.load_locked`);
- the cross-validation fold of every other group: each SNU workload its own fold (leave-one-workload-out), every
  other group one of FOLDS folds by its hash.
Counts that decide whether there is enough to learn from are in migrations (the variants of one run without its
optional measurements are one migration), not rows.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

FOLDS = 5
LOCKED_SHARE = 0.2
TIME_BUCKET_S = 86_400  # outcomes of one VM between one host pair within a day are one group


def share_of(group: str, salt: str) -> float:
    """A stable number in [0, 1) for a group name: the same on every machine and run (not Python's hash)."""
    digest = hashlib.sha256(f"{salt}\0{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_locked(group: str) -> bool:
    return share_of(group, "locked") < LOCKED_SHARE


def locked_mask(frame: pd.DataFrame) -> np.ndarray:
    """Which rows of a table (with `lock_group`) belong to the locked test part."""
    names = frame["lock_group"].astype(str)
    return np.asarray(names.map({g: is_locked(g) for g in names.unique()}), dtype=bool)


def fold_of(group: str, k: int = FOLDS) -> str:
    """The cross-validation fold of a group: an SNU workload is its own; any other group one of k by its hash."""
    return group if group.startswith("snu:") else f"fold {math.floor(share_of(group, 'fold') * k)}"


def fold_labels(groups: pd.Series, k: int = FOLDS) -> np.ndarray:
    names = groups.astype(str)
    return np.asarray(names.map({g: fold_of(g, k) for g in names.unique()}), dtype=object)


def outcome_group(vm: str, source: str, target: str, finished_at_s: float) -> str:
    """The group of a migration the advisor executed: its VM, host pair and day (migrations of one VM between the
    same hosts on one day are alike, and would teach the evaluation what it is to be tested on)."""
    day = int(finished_at_s // TIME_BUCKET_S) if math.isfinite(finished_at_s) else -1
    return f"advisor:{vm}|{source}>{target}|{day}"


def migration_ids(frame: pd.DataFrame) -> np.ndarray:
    """The migration each row is a variant of (`row`, as `with_variants` writes it; else each row its own)."""
    return frame["row"].to_numpy() if "row" in frame.columns else np.arange(len(frame))


def migration_count(frame: pd.DataFrame, mask: np.ndarray | None = None) -> int:
    ids = migration_ids(frame)
    return len(np.unique(ids if mask is None else ids[mask]))
