"""The lab collection job (training/collect_lab.py) on its tiny grid: real migrations into a CSV, then resumed
without repeating anything, also after a crash in the middle of writing a row.

It brings up a lab of its own ($ADVISOR_LAB_COLLECT_TEST_ROOT, default /tmp/advisor-lab-collect-test), not the
session `lab` fixture's, and takes it down at the end. About 2 minutes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from training import collect_lab
from training.lab_grid import RATIO_BANDS, full_grid, tiny_grid

ROOT = Path(os.environ.get("ADVISOR_LAB_COLLECT_TEST_ROOT", "/tmp/advisor-lab-collect-test"))
PAGES_PER_MIB = 256


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run(output: Path, *extra: str) -> int:
    return collect_lab.main(["--grid", "tiny", "--output", str(output), "--lab-root", str(ROOT), *extra])


def test_the_full_grid_is_deterministic_and_spans_the_convergence_ratio() -> None:
    grid = full_grid(1)
    assert [p.config_id for p in grid] == [p.config_id for p in full_grid(1)]
    assert len(grid) >= 300 and len({p.config_id for p in grid}) == len(grid)
    assert {p.technique for p in grid} == {"precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress",
                                           "postcopy"}
    for technique in ("precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress"):
        ratios = [p.budget_ratio for p in grid if p.technique == technique and p.working_set_mib > 0]
        for low, high in RATIO_BANDS:
            assert sum(low <= r < high for r in ratios) >= 8, (technique, low, high)
    assert all(p.working_set_mib <= {128: 40, 256: 96}[p.memory_mib] for p in grid)
    assert sum(p.deadline_ms == 90_000 for p in grid) > len(grid) / 2
    assert sum(p.max_downtime_ms == 300 for p in grid) > len(grid) / 2


@pytest.mark.integration
def test_tiny_collection_records_real_migrations_and_resumes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (privileged libvirtd in mount namespaces)")
    missing = [p for p in ("libvirtd", "qemu-system-x86_64", "unshare") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)} (scripts/setup.sh installs them)")
    output = tmp_path / "lab.csv"
    assert run(output) == 0

    first = rows(output)
    assert list(first[0]) == list(collect_lab.FIELDS)
    assert [r["config_id"] for r in first] == [p.config_id for p in tiny_grid(1)]
    by_workload = {r["workload"]: r for r in first}
    idle, aborted, postcopy = by_workload["idle"], by_workload["steady-16MiB@32"], by_workload["bursty-8MiB@8"]
    assert idle["outcome"] == "completed" and postcopy["outcome"] == "completed", first
    # 16 MiB rewritten at 32 MiB/s against an 8 MiB/s cap cannot finish within 8 s: aborted at the deadline.
    assert aborted["outcome"] == "aborted" and aborted["downtime_ms"] == "" and "cancel" in aborted["error"]
    assert 8000 <= float(aborted["total_time_ms"]) < 9500
    assert 0 < float(aborted["transferred_kib"]) < 9.5 * 8 * 1024
    for r in (idle, postcopy):
        assert 40 * 1024 < float(r["transferred_kib"]) < 200 * 1024, r  # KiB: QEMU skips the zero pages
        assert 0 < float(r["downtime_ms"]) < 1000 and 40 < float(r["nonzero_mib"]) <= 128.01, r
    assert postcopy["postcopy_switch"] == "start" and float(postcopy["postcopy_after_ms"]) > 0
    # The writer's own count (in the heartbeat): nothing when idle, about the set 32 MiB/s when steady.
    assert float(idle["writer_rate_before_mib_s"]) == 0 and float(idle["writer_rate_during_mib_s"]) == 0
    # (counted between heartbeats, which a loaded machine delays: a second's writes can land in a shorter gap)
    assert 8 < float(aborted["writer_rate_before_mib_s"]) <= 40, aborted
    for r in first:
        assert r["source"] == "lab" and r["vm_memory_mib"] == "128"
        assert (r["error"] == "") == (r["outcome"] == "completed"), r
        assert r["guest_alive_after"] == "True", r
        for column in ("dirty_rate_pages_per_s", "dirty_rate_2s_pages_per_s", "dirty_rate_4s_pages_per_s"):
            # libvirt reads whole MiB/s: a pages/s figure is a multiple of 256
            assert float(r[column]) >= 0 and float(r[column]) % PAGES_PER_MIB == 0, (column, r)
        assert 5 < float(r["memory_used_mib"]) < 128, r
    card = json.loads(output.with_suffix(".meta.json").read_text())
    assert card["rows"] == 3 and card["silent_guests"] == 0 and card["failures"] == []

    # Resumed: everything is recorded, nothing runs again.
    assert run(output) == 0
    assert rows(output) == first

    # A crash in the middle of writing the last row: the cut line is removed and that point runs again.
    raw = output.read_bytes()
    last_line = raw.rstrip(b"\n").rsplit(b"\n", 1)[1]
    output.write_bytes(raw[:len(raw) - len(last_line) // 2 - 1])
    assert run(output) == 0
    again = rows(output)
    assert [r["config_id"] for r in again] == [r["config_id"] for r in first]
    assert again[:2] == first[:2] and again[2]["outcome"] == "completed"
