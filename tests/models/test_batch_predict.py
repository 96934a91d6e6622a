"""Batch CSV prediction: passthrough columns, predictions with bounds, bad rows refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from advisor.domain.errors import AdvisorError
from advisor.ml.batch import BatchInputError, predict_csv
from advisor.ml.cost import load_cost_predictor
from advisor.ml.predictor import AnalyticPredictor, CostPredictor
from tests.support import REPO

MODELS_DIR = REPO / "models" / "cost"
HEADER = "vm,technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,note\n"
GOOD = (
    HEADER
    + "vm-01,precopy,1024,5000,800,100,keep me\n"
    + "vm-02,postcopy,2048.5,0,900,150,\"a, quoted\"\n"
    + "vm-03,precopy_xbzrle,512,20000,300,50,007\n"
)


@pytest.fixture(scope="module")
def learned() -> CostPredictor:
    return load_cost_predictor(MODELS_DIR)


def test_predicts_every_row_and_passes_other_columns_through(tmp_path: Path, learned: CostPredictor) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(GOOD)
    assert predict_csv(src, dst, learned) == 3
    out = pd.read_csv(dst, dtype=str, keep_default_na=False)
    assert list(out["vm"]) == ["vm-01", "vm-02", "vm-03"]
    assert list(out["note"]) == ["keep me", "a, quoted", "007"]  # untouched, not re-typed
    assert list(out["vm_memory_mib"]) == ["1024", "2048.5", "512"]
    for name in ("predicted_total_time_ms", "predicted_downtime_ms", "predicted_transferred_kib"):
        low, mid, high = (out[f"{name}{s}"].astype(float) for s in ("_low", "", "_high"))
        assert ((low <= mid) & (mid <= high) & (low > 0)).all()
    assert set(out["model_name"]) == {learned.model.name}
    assert set(out["model_version"]) == {learned.model.version}
    # post-copy moves 2 GiB in about one pass: ~2.1e6 KiB
    assert 1.9e6 < float(out["predicted_transferred_kib"][1]) < 2.5e6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]  # temp file renamed away


def test_analytic_fallback_also_serves_batches(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(GOOD)
    assert predict_csv(src, dst, AnalyticPredictor(fallback_reason="test")) == 3
    out = pd.read_csv(dst, keep_default_na=False)
    assert set(out["model_name"]) == {"analytic"} and set(out["model_fallback_reason"]) == {"test"}


def test_bad_rows_are_listed_by_data_row_number_and_nothing_is_written(
    tmp_path: Path, learned: CostPredictor
) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(
        HEADER
        + "ok,precopy,1024,5000,800,100,\n"  # row 1
        + "a,precopy,,5000,800,100,\n"  # row 2: missing memory
        + "b,precopy,1024,lots,800,100,\n"  # row 3: not a number
        + "c,precopy,1024,NaN,800,100,\n"  # row 4: NaN
        + "d,precopy,1024,5000,-5,100,\n"  # row 5: negative
        + "e,teleport,1024,5000,800,100,\n"  # row 6: unknown technique
        + "ok,postcopy,1024,5000,800,100,\n"  # row 7
    )
    with pytest.raises(BatchInputError) as info:
        predict_csv(src, dst, learned)
    err = info.value
    assert isinstance(err, AdvisorError)
    assert [p.row for p in err.problems] == [2, 3, 4, 5, 6]
    message = str(err)
    assert "row 2: vm_memory_mib is missing" in message
    assert "row 3: dirty_rate_pages_per_s is not a number ('lots')" in message
    assert "row 4: dirty_rate_pages_per_s" in message
    assert "row 5: available_bandwidth_mbps is negative" in message
    assert "row 6: unknown technique 'teleport'" in message
    assert "row 2: vm_memory_mib is missing [line 3]" in message and "[line N] is the row's line" in message
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no temp file left behind


def test_missing_column_and_existing_output_left_alone(tmp_path: Path, learned: CostPredictor) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("technique,vm_memory_mib\nprecopy,1024\n")
    dst.write_text("previous results\n")
    with pytest.raises(BatchInputError, match=r"missing column.*dirty_rate_pages_per_s"):
        predict_csv(src, dst, learned)
    assert dst.read_text() == "previous results\n"
    with pytest.raises(BatchInputError, match="file not found"):
        predict_csv(tmp_path / "absent.csv", dst, learned)


def test_optional_columns_probability_and_what_was_assumed(tmp_path: Path, learned: CostPredictor) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(
        "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,source,"
        "memory_used_mib,max_downtime_ms,deadline_ms,dirty_rate_4s_pages_per_s\n"
        "precopy,128,0,10000,32,lab,90,300,90000,0\n"  # an idle lab guest
        "precopy,256,16384,10000,8,lab,120,300,90000,8192\n"  # 64 MiB/s over an 8 MiB/s link: cannot converge
        "precopy,256,16384,10000,8,lab,,,,\n"  # the same, without the optional measurements
        "postcopy,1024,5000,800,100,,,,,\n"  # an SNU-like row
    )
    predict_csv(src, dst, learned)
    out = pd.read_csv(dst, keep_default_na=False)
    assert list(out["predicted_converges"]) == [True, False, False, True]
    p = [float(v) for v in out["predicted_converge_probability"]]
    assert p[0] > 0.5 and p[1] == 0.0 and p[3] == 1.0
    assert out["assumed"][0] == ""
    assert out["assumed"][2] == "memory in use unknown: all 256 MiB configured copied; max downtime 300 ms; no deadline"
    assert out["assumed"][3] == "source snu; max downtime 300 ms; no deadline"
    assert "cannot converge" in out["notes"][1]
    # idle: about one pass of the memory in use over the cap, not of the configured memory
    assert float(out["predicted_total_time_ms"][0]) < 128 / 32 * 1000


def test_a_blind_reading_and_measured_non_zero_pages_in_a_batch(tmp_path: Path, learned: CostPredictor) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(
        "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,source,"
        "memory_used_mib,dirty_rate_4s_pages_per_s,vcpu_utilization,nonzero_memory_mib\n"
        "precopy,256,0,10000,32,lab,90,0,1.0,\n"  # stress-ng rewriting the same values: busy, reads 0
        "precopy,256,0,10000,32,lab,90,0,0.05,\n"  # idle: the 0 is believed
        "postcopy,256,0,10000,32,lab,90,0,0.05,180\n"  # 180 MiB measured non-zero: one pass over them
        "postcopy,256,0,10000,32,lab,90,0,0.05,\n"
    )
    predict_csv(src, dst, learned)
    out = pd.read_csv(dst, keep_default_na=False)
    assert list(out["predicted_converges"]) == [False, True, True, True]
    assert "dirty rate unknown: the guest is busy while page sampling reads ~0" in out["assumed"][0]
    assert "dirty rate unknown" in out["notes"][0] and "dirty rate unknown" not in out["notes"][1]
    assert float(out["predicted_total_time_ms"][2]) > 1.5 * float(out["predicted_total_time_ms"][3])


def test_bad_optional_values_are_refused_by_row(tmp_path: Path, learned: CostPredictor) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,"
                   "max_downtime_ms,deadline_ms,source\n"
                   "precopy,128,0,10000,32,0,-5,lab\n"
                   "precopy,128,0,10000,32,abc,1,\"bad\x01source\"\n")
    with pytest.raises(BatchInputError) as caught:
        predict_csv(src, dst, learned)
    text = str(caught.value)
    assert "row 1: max_downtime_ms must be positive" in text and "row 1: deadline_ms must be in" in text
    assert "row 2: max_downtime_ms is not a number" in text and "row 2: source must be" in text
    assert not dst.exists()


def test_local_disks_add_their_copy_and_bad_disk_cells_are_refused(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    head = "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s"
    src.write_text(f"{head},disk_mib,disk_shared,disk_write_rate_mib_s\n"
                   "precopy,1024,0,1000,100,4096,,\n"  # shared (the default): nothing copied
                   "precopy,1024,0,1000,100,4096,FALSE,2\n"
                   "precopy,1024,0,1000,100,4096,no,\n")  # write rate not measured
    assert predict_csv(src, dst, AnalyticPredictor()) == 3
    out = pd.read_csv(dst, keep_default_na=False)
    shared, local, unmeasured = (out.iloc[k] for k in range(3))
    # 4 GiB at 100 MiB/s (the cap): about 41 s more, and 4 GiB more sent
    assert 40_000 < local["predicted_total_time_ms"] - shared["predicted_total_time_ms"] < 45_000
    assert local["predicted_transferred_kib"] - shared["predicted_transferred_kib"] > 4096 * 1024
    assert "local disks" not in shared["notes"] and "local disks: 4096 MiB" in local["notes"]
    assert "write rate not measured" in unmeasured["notes"]
    src.write_text(f"{head},disk_mib,disk_shared,disk_write_rate_mib_s\n"
                   "precopy,1024,0,1000,100,,false,\n"
                   "precopy,1024,0,1000,100,10,maybe,\n"
                   "precopy,1024,0,1000,100,-5,true,nan\n")
    with pytest.raises(BatchInputError) as refused:
        predict_csv(src, dst, AnalyticPredictor())
    text = str(refused.value)
    assert "row 1: disk_shared is false but disk_mib is missing" in text
    assert "row 2: disk_shared must be true or false (got 'maybe')" in text
    assert "row 3: disk_mib must be in [0," in text and "row 3: disk_write_rate_mib_s is not a number" in text


def test_a_disk_size_bounds_the_rewrites_and_a_cold_row_is_priced_by_its_steps(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    head = "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s"
    src.write_text(f"{head},disk_mib,disk_size_mib,disk_shared,disk_write_rate_mib_s,shutdown_timeout_ms\n"
                   "precopy,1024,0,1000,100,100,100,false,400,\n"  # rewrites bounded by a 100 MiB disk
                   "precopy,1024,0,1000,100,100,100000,false,400,\n"  # ... or by a 100 GiB one
                   "cold,1024,0,1000,100,4096,,false,,\n"  # the default timeout, 4 GiB copied while off
                   "cold,1024,0,1000,100,,,,,5000\n")  # shared disks: nothing copied
    assert predict_csv(src, dst, AnalyticPredictor()) == 4
    out = pd.read_csv(dst, keep_default_na=False)
    small, large, cold, shared = (out.iloc[k] for k in range(4))
    assert large["predicted_transferred_kib"] > small["predicted_transferred_kib"]
    assert cold["model_name"] == shared["model_name"] == "cold-steps"
    # median downtime: a 10 s shutdown, 4 GiB over the 100 MiB/s cap while the guest is off, a 1.1 s start
    assert cold["predicted_downtime_ms"] == pytest.approx(10_000 + 40_960 + 1_100, rel=1e-3)
    assert shared["predicted_downtime_ms"] == pytest.approx(5_000 + 1_800 + 1_100, rel=1e-3)  # forced off at 5 s
    assert cold["predicted_transferred_kib"] == pytest.approx(4096 * 1024, rel=1e-3)
    assert "up to 60 s" in cold["notes"] and "up to 5 s" in shared["notes"]
    src.write_text(f"{head},disk_mib,disk_size_mib,disk_shared,shutdown_timeout_ms\n"
                   "precopy,1024,0,1000,100,200,100,false,\n"
                   "precopy,1024,0,1000,100,,100,false,\n"
                   "frozen,1024,0,1000,100,,,,-1\n")
    with pytest.raises(BatchInputError) as refused:
        predict_csv(src, dst, AnalyticPredictor())
    text = str(refused.value)
    assert "row 1: disk_size_mib (100) is below disk_mib (200)" in text
    assert "row 2: disk_size_mib without disk_mib" in text and "row 2: disk_shared is false but disk_mib" in text
    assert "row 3: unknown technique 'frozen' (one of precopy," in text and ", cold)" in text
    assert "row 3: shutdown_timeout_ms must be in [0, 3600000]" in text
