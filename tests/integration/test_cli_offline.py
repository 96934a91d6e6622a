"""`advisor predict cost`: batch prediction of a CSV as an offline user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "migrations" / "snu-live-migrations.csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.skipif(not SHARED.exists(), reason="the shared data is beside the repository")
def test_predict_cost_on_real_migrations(tmp_path: Path) -> None:
    sample = pd.read_csv(SHARED).sample(300, random_state=1)
    sample.to_csv(tmp_path / "in.csv", index=False)
    result = run("predict", "cost", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    assert "lightgbm-cost" in result.stderr and "wrote 300 rows" in result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[: len(sample.columns)]) == list(sample.columns)
    assert (out["total_time_ms"] == sample["total_time_ms"].to_numpy()).all()  # passed through untouched
    ape = (out["predicted_total_time_ms"] - out["total_time_ms"]).abs() / out["total_time_ms"]
    assert ape.median() < 0.2  # seen data: a sanity bound, the honest figures are in docs/cost-model.md


def test_bad_rows_exit_2_with_row_numbers_and_write_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s\n"
                   "precopy,1024,100,900,100\nprecopy,-1,3,4,5\nwarp,1,2,3,4\n")
    result = run("predict", "cost", "--input", str(bad), "--output", str(tmp_path / "out.csv"))
    assert result.returncode == 2  # bad input, as bad usage
    assert "row 2: vm_memory_mib is negative" in result.stderr and "row 3: unknown technique 'warp'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.csv").exists()
