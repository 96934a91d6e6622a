"""How training reads the lab's file: the machine's load per CPU from the file's own card, what QEMU held resident
as serving reads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from training.cost_data import DEFAULT_LAB_DATA, load_lab


def test_the_load_per_cpu_comes_from_the_files_card_and_is_unknown_without_one(tmp_path: Path) -> None:
    alone = tmp_path / "alone.csv"
    shutil.copy(DEFAULT_LAB_DATA, alone)
    assert load_lab(alone)["host_load_per_cpu"].isna().all()  # no card: not taken from another machine
    carded = tmp_path / "carded.csv"
    shutil.copy(DEFAULT_LAB_DATA, carded)
    (tmp_path / "carded.meta.json").write_text(json.dumps({"machine": {"cpus": 4}}))
    lab = load_lab(carded)
    assert np.allclose(lab["host_load_per_cpu"], lab["host_load_1m"] / 4, equal_nan=True)
    cpus = json.loads(DEFAULT_LAB_DATA.with_name("lab_migrations.meta.json").read_text())["machine"]["cpus"]
    served = load_lab(DEFAULT_LAB_DATA)
    assert np.allclose(served["host_load_per_cpu"], served["host_load_1m"] / cpus, equal_nan=True)


def test_what_qemu_held_resident_is_read_as_serving_reads_it() -> None:
    lab = load_lab(DEFAULT_LAB_DATA)
    assert np.allclose(lab["resident_memory_mib"], lab["qemu_rss_mib"], equal_nan=True)
    assert lab["resident_memory_mib"].notna().sum() >= 300  # the v2 and links collections recorded it
