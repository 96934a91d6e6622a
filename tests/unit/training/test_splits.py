"""Splits frozen by a hash of each group: new data never moves an existing group to another fold or into or out
of the locked test part, and no training path reads the locked part."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from tests.support import REPO
from training import cost_model, splits
from training.cost_data import load_all, load_locked, load_outcomes, with_variants

MIDNIGHT = 19_676 * 86_400.0  # a day starts: 48 hourly migrations fall on two days


def _outcomes(tmp_path: Path, n: int, start: int = 0) -> Path:
    path = tmp_path / f"outcomes{start}.csv"
    k = np.arange(start, start + n)
    pd.DataFrame({"migration_id": [f"op{i}" for i in k], "technique": "precopy", "vm_memory_mib": 1024.0,
                  "dirty_rate_pages_per_s": 2560.0, "available_bandwidth_mbps": 800.0, "max_bandwidth_mib_s": 100.0,
                  "total_time_ms": 12_000.0, "downtime_ms": 40.0, "transferred_kib": 1e6, "source": "lab",
                  "outcome": "completed", "vm_id": [f"vm{i % 7}" if i < 48 else f"vm{i}" for i in k],
                  "source_host_id": "a", "target_host_id": "b", "finished_at_s": MIDNIGHT + 3_600.0 * k,
                  }).to_csv(path, index=False)
    return path


def test_adding_ten_outcomes_moves_no_existing_group_to_another_fold(tmp_path: Path) -> None:
    before = load_all(outcomes=(_outcomes(tmp_path, 48),))
    after = load_all(outcomes=(_outcomes(tmp_path, 48), _outcomes(tmp_path, 10, start=48)))
    fold_before = dict(zip(before["group"], cost_model.folds(before), strict=True))
    fold_after = dict(zip(after["group"], cost_model.folds(after), strict=True))
    assert len(fold_after) > len(fold_before)
    assert {g: fold_after[g] for g in fold_before} == fold_before
    assert set(splits.fold_labels(after["group"])) >= {"fold 0", "fold 1", "fold 2", "fold 3", "fold 4"}


def test_outcomes_are_grouped_by_vm_host_pair_and_day(tmp_path: Path) -> None:
    frame = load_outcomes(_outcomes(tmp_path, 48))  # one a hour over two days, seven VMs in turn
    assert frame["group"].nunique() == 14
    assert frame["group"].iloc[0] == splits.outcome_group("vm0", "a", "b", MIDNIGHT)


def test_the_locked_part_is_a_fixed_share_of_groups_that_training_never_loads() -> None:
    train, locked = load_all(), load_locked()
    assert not set(train["lock_group"]) & set(locked["lock_group"])
    assert locked["lock_group"].map(splits.is_locked).all() and not train["lock_group"].map(splits.is_locked).any()
    share = locked["lock_group"].nunique() / (locked["lock_group"].nunique() + train["lock_group"].nunique())
    assert 0.1 < share < 0.3 and {"snu", "lab"} <= set(locked["source"])
    assert load_locked().equals(locked)  # the same rows every time


def test_the_locked_part_is_loaded_only_for_the_gate() -> None:
    readers = []
    for path in sorted((REPO / "training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) in (
                    "load_locked", "locked_mask"):
                readers.append(path.name)
    # cost_data defines both; train_cost loads the locked rows for the gate only (tests/models checks that its
    # training saw none of them)
    assert set(readers) == {"cost_data.py", "train_cost.py"}


def test_minimum_counts_are_in_migrations_not_rows() -> None:
    frame = pd.DataFrame({"x": range(3), "source": "lab", "memory_used_mib": [1.0, 2.0, 3.0],
                          "working_set_mib": [5.0, 6.0, 7.0], "dirty_rate_2s_pages_per_s": np.nan,
                          "dirty_rate_4s_pages_per_s": np.nan})
    variants = with_variants(frame)
    assert len(variants) == 12 and splits.migration_count(variants) == 3
    assert splits.migration_count(variants, (variants["variant"] == "full").to_numpy()) == 3
