"""training.few_shot's floor (the in-sample error of a profile calibrated on every migration, with the first pass
estimated from memory in use and with the non-zero pages given as measured) and each collection calibrated like the
others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    tables = few_shot.floor(lab).split("\n\n")
    rows = tables[0].splitlines()
    assert rows[0].startswith("| first pass from | precopy |") and len(rows) == 5
    # made by the physics, nothing is left by the host's load or the writer: every group's actual over fitted is 1
    assert tables[1].startswith("| host load") and tables[2].startswith("| guest's writer")
    for row in (*tables[1].splitlines()[2:], *tables[2].splitlines()[2:]):
        assert row.split(" | ")[2] == "1.00"
    in_use, _, measured = (float(r.rstrip(" |").rsplit("|", 1)[1].strip().rstrip("%")) for r in rows[2:])
    assert rows[4].startswith("| non-zero pages, measured |") and measured <= 1.0
    assert in_use > measured
    assert np.isfinite(in_use)


def test_each_collection_is_calibrated_like_the_others_and_known_profiles_beat_textbook_physics() -> None:
    """Lab migrations made by the physics of a slow host: a new collection calibrated like the others starts from
    their parameters, so with no migration of its own it is far nearer than the physics' defaults."""
    lab = as_serving_reads_memory(pd.read_csv(DEFAULT_LAB_DATA), DEFAULT_LAB_DATA)
    lab = lab[lab["outcome"] == "completed"].head(240).copy()
    slow = {**PRIOR, "throughput": 0.5, "round_overhead_ms": 300.0}
    made = physics(few_shot.table(lab, "x"), slow)
    lab["total_time_ms"], lab["downtime_ms"] = made.total_time_ms, made.downtime_ms
    lab["transferred_kib"] = made.transferred_mib * 1024.0
    lab["collection"] = "a"
    assert few_shot.like_others(lab, [0], draws=1).empty  # one collection: nothing to be like
    lab["collection"] = np.where(np.arange(len(lab)) < 120, "a", "b")
    result = few_shot.like_others(lab, [0, 5], draws=2)
    assert sorted(set(result["collection"])) == ["a", "b"] and sorted(set(result["k"])) == [0, 5]
    alone = few_shot.few_shot(lab[lab["collection"] == "a"], [0], draws=1)
    like, default = (r[(r["k"] == 0) & (r["technique"] == few_shot.ALL)]["time MAPE"].iloc[0]
                     for r in (result[result["collection"] == "a"], alone))
    assert like < default / 2, (like, default)


def test_the_spread_of_repeated_runs_scores_each_run_against_the_others_of_its_setting() -> None:
    rows = []
    for technique, times, outcomes in (("precopy", (10.0, 10.0, 10.0), ("completed",) * 3),
                                       ("postcopy", (8.0, 32.0, 16.0), ("completed",) * 3),
                                       ("precopy_xbzrle", (20.0, 20.0, 90.0), ("completed", "completed", "aborted"))):
        # a setting a technique has not (NaN) is a setting like any other
        rows += [{"technique": technique, "workload": "w", "vm_memory_mib": 256, "compression_threads": np.nan,
                  "total_time_ms": t,
                  "downtime_ms": 5.0, "transferred_kib": 1024.0 * t, "outcome": o} for t, o in zip(times, outcomes,
                                                                                                  strict=True)]
    table = few_shot.repeat_spread(pd.DataFrame(rows)).splitlines()
    by_technique = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    # identical runs: no error; 8, 32, 16: each against the geometric mean of the other two (sqrt(512),
    # sqrt(128), 16)
    assert by_technique["precopy"].startswith("| precopy | 1 | 3 | 0% | 0% | 0% | 0 |")
    expected = np.mean([abs(512 ** 0.5 - 8) / 8, abs(128 ** 0.5 - 32) / 32, abs(16 - 16) / 16])
    assert f"| {100 * expected:.0f}% |" in by_technique["postcopy"]
    # a downtime not measured is left out, not averaged in as 1 ms
    with_gap = pd.DataFrame(rows).assign(downtime_ms=lambda f: np.where(np.arange(len(f)) == 1, np.nan, 5.0))
    gapped = {line.split(" | ")[0].strip("| "): line for line in few_shot.repeat_spread(with_gap).splitlines()[2:]}
    assert gapped["precopy"].startswith("| precopy | 1 | 3 | 0% | 0% | 0% |")
    # an aborted run is not scored, and its setting ended both ways
    assert by_technique["precopy_xbzrle"].startswith("| precopy_xbzrle | 1 | 2 | 0% |")
    assert by_technique["precopy_xbzrle"].endswith("| 1 |") and by_technique["all"].startswith("| all | 3 | 8 |")


def test_a_file_that_is_not_there_is_a_usage_error_not_a_traceback(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--repeats", str(tmp_path / "missing.csv")], ["--lab", str(tmp_path / "missing.csv")]):
        with pytest.raises(SystemExit) as exit_:
            few_shot.main(argv)
        assert exit_.value.code == 2 and "missing.csv is not a file" in capsys.readouterr().err
