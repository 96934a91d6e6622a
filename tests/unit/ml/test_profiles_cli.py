"""`advisor profiles calibrate|list|show` and the host_profile column of `advisor predict cost`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from advisor.cli.main import main
from advisor.ml.batch import BatchInputError, predict_csv
from advisor.ml.predictor import AnalyticPredictor
from advisor.ml.profile_input import read_calibration
from advisor.ml.profile_serving import ProfileServingPredictor
from advisor.ml.profile_store import ProfileStore
from advisor.ml.profiles import PRIOR

LAB = Path(__file__).resolve().parents[3] / "training" / "data" / "lab_migrations.csv"
COLUMNS = ["technique", "vm_memory_mib", "dirty_rate_pages_per_s", "available_bandwidth_mbps", "max_bandwidth_mib_s",
           "source", "memory_used_mib", "max_downtime_ms", "deadline_ms", "working_set_mib", "total_time_ms",
           "downtime_ms", "transferred_kib", "outcome"]


def calibration_csv(path: Path, rows: int = 20) -> Path:
    """The first lab migrations, their `source` left empty: they calibrate whatever profile is named."""
    lab = pd.read_csv(LAB, dtype=str, keep_default_na=False)
    frame = lab[COLUMNS].head(rows)
    # the hosts' load as serving reads it (runnable threads per CPU): the lab machine has 2
    load = (pd.to_numeric(lab["host_load_1m"].head(rows)) / 2).round(3).astype(str)
    frame.assign(source="", host_load_per_cpu=load).to_csv(path, index=False)
    return path


def test_calibrate_stores_a_version_and_list_and_show_read_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    src = calibration_csv(tmp_path / "rig.csv")
    models = tmp_path / "models"
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(src), "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    assert "profile rig2 version 1.0.0: 20 migrations" in out and "throughput" in out
    assert "kept" not in out  # every parameter fitted
    assert (models / "profiles" / "rig2" / "1.0.0" / "card.json").is_file()
    assert (models / "profiles" / "rig2" / "ACTIVE").read_text().strip() == "1.0.0"
    assert main(["profiles", "list", "--models-dir", str(models), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["version"], p["migrations"]) for p in listed] == [("rig2", "1.0.0", 20)]
    assert main(["profiles", "show", "rig2", "--models-dir", str(models)]) == 0
    assert "postcopy" in capsys.readouterr().out
    assert main(["profiles", "show", "never", "--models-dir", str(models)]) == 1
    for taken in ("lab", "Bad/Name"):
        assert main(["profiles", "calibrate", "--name", taken, "--input", str(src), "--models-dir", str(models)]) == 2
    assert "served by the learned model" in capsys.readouterr().err and not (models / "profiles" / "lab").exists()


def test_calibrate_like_a_known_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(calibration_csv(tmp_path / "rig.csv", 60)),
                 "--models-dir", str(models)]) == 0
    few = calibration_csv(tmp_path / "few.csv", 3)
    assert main(["profiles", "calibrate", "--name", "rig3", "--input", str(few), "--models-dir", str(models),
                 "--like", "rig2"]) == 0
    shown = capsys.readouterr().out
    assert "3 migrations, like rig2" in shown and "shrunk toward" in shown
    assert main(["profiles", "list", "--models-dir", str(models), "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["rig3"]["like"] == "rig2" and listed["rig2"]["like"] is None
    card = json.loads((models / "profiles" / "rig3" / "1.0.0" / "card.json").read_text())
    assert card["data"]["like"] == "rig2/1.0.0" and card["created_by"].endswith("--like rig2")
    # no migration of their own yet: the known profile's parameters, the intervals of a profile left out, 0 migrations
    assert main(["profiles", "calibrate", "--name", "rig5", "--like", "rig2", "--models-dir", str(models),
                 "--json"]) == 0
    rig5 = json.loads(capsys.readouterr().out)
    assert rig5["migrations"] == 0 and rig5["like"] == "rig2" and rig5["intervals"] == {}
    assert rig5["parameters"] == rig5["shrunk_toward"] == listed["rig2"]["parameters"]
    assert main(["profiles", "calibrate", "--name", "rig6", "--models-dir", str(models)]) == 2
    assert "--input: is required unless --like" in capsys.readouterr().err
    # a base never calibrated (the learned model's `lab` among them) is refused and nothing is written
    for base in ("never", "lab"):
        assert main(["profiles", "calibrate", "--name", "rig4", "--input", str(few), "--models-dir", str(models),
                     "--like", base]) == 1
        assert "--like: unknown host profile" in capsys.readouterr().err
    assert not (models / "profiles" / "rig4").exists()
    # not itself: a few migrations shrunk toward its own fit would replace the fit of many
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(few), "--models-dir", str(models),
                 "--like", "rig2"]) == 2
    assert "--like: rig2 is the profile calibrated" in capsys.readouterr().err
    assert sorted(p.name for p in (models / "profiles" / "rig2").iterdir()) == ["1.0.0", "ACTIVE"]


def test_every_bad_row_is_listed_and_nothing_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(calibration_csv(tmp_path / "rig.csv"), dtype=str, keep_default_na=False)
    frame.loc[1, "outcome"] = "maybe"
    frame.loc[3, "total_time_ms"] = "abc"
    frame.loc[4, "vm_memory_mib"] = "-1"
    frame.loc[5, "outcome"], frame.loc[5, "downtime_ms"] = "aborted", "12"
    frame.loc[6, "downtime_ms"] = ""
    frame.to_csv(tmp_path / "bad.csv", index=False)
    models = tmp_path / "models"
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(tmp_path / "bad.csv"),
                 "--models-dir", str(models)]) == 2
    err = capsys.readouterr().err
    for expected in ("row 2: outcome 'maybe'", "row 4: total_time_ms is not a number", "row 5: vm_memory_mib is "
                     "negative", "row 6: downtime_ms must be empty where the migration was aborted",
                     "row 7: downtime_ms is missing"):
        assert expected in err
    assert not models.exists()


def test_host_profile_column_and_its_alias(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles")
    predictor = ProfileServingPredictor(AnalyticPredictor(), store.get)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,"
                   "host_profile,source\n"
                   "precopy,128,0,10000,32,rig9,\n"
                   "precopy,128,0,10000,32,,rig9\n"
                   "precopy,128,0,10000,32,lab,lab\n")
    predict_csv(src, dst, predictor)
    notes = list(pd.read_csv(dst, keep_default_na=False)["notes"])
    assert notes[0].startswith("profile rig9 is not calibrated") and notes[1].startswith("profile rig9 is not")
    assert "not calibrated" not in notes[2]
    src.write_text("technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s,"
                   "host_profile,source\nprecopy,128,0,10000,32,rig9,lab\n")
    with pytest.raises(BatchInputError, match="row 1: host_profile 'rig9' and its alias source 'lab' differ"):
        predict_csv(src, tmp_path / "never.csv", predictor)


def test_each_row_is_read_as_a_migration_of_the_profile_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    """Without a source column, or with it naming the profile in any case, the same migrations fit the same
    profile: each row is read as serving reads a host of that profile, not as `snu` (the default of no source)."""
    frame = pd.read_csv(calibration_csv(tmp_path / "rig.csv", 12), dtype=str, keep_default_na=False)
    frame.drop(columns="source").to_csv(tmp_path / "none.csv", index=False)
    frame.assign(source="Rig2").to_csv(tmp_path / "named.csv", index=False)
    fitted = []
    for src in ("rig.csv", "none.csv", "named.csv"):
        assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(tmp_path / src),
                     "--models-dir", str(tmp_path / f"models-{src}"), "--json"]) == 0
        fitted.append(json.loads(capsys.readouterr().out)["parameters"])
    assert fitted[0] == fitted[1] == fitted[2]


def test_a_profile_whose_active_version_is_unreadable_is_shown_and_listed_as_such(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    for name in ("rig2", "broken"):
        assert main(["profiles", "calibrate", "--name", name, "--input", str(calibration_csv(tmp_path / "rig.csv")),
                     "--models-dir", str(models)]) == 0
    (models / "profiles" / "broken" / "1.0.0" / "parameters.json").write_text("{bad")
    capsys.readouterr()
    assert main(["profiles", "show", "broken", "--models-dir", str(models)]) == 1
    assert "name: host profile broken exists but its active version is unreadable: corrupt artifact" in \
        capsys.readouterr().err
    assert main(["profiles", "list", "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    assert "rig2" in out and "broken: its active version is unreadable, served as uncalibrated: corrupt" in out
    assert main(["profiles", "list", "--models-dir", str(models), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == ["rig2", "broken"] and "JSONDecodeError" in listed[1]["unreadable"]
    assert main(["profiles", "calibrate", "--name", "rig3", "--like", "broken", "--models-dir", str(models)]) == 1
    assert "--like: host profile broken exists but its active version is unreadable" in capsys.readouterr().err


@pytest.mark.parametrize(("version", "why"), [
    ("abc", "version 'abc' must be MAJOR.MINOR.PATCH"),
    ("9.9.9.9", "version '9.9.9.9' must be MAJOR.MINOR.PATCH"),
    ("01.0.0", "version '01.0.0' must be MAJOR.MINOR.PATCH, numbers without leading zeros"),
    ("1.0.0", "version 1.0.0 exists in"),
    ("2.0.0", "version 2.0.0 exists in .* \\(as 02.0.0\\): versions are immutable, write another \\(the next free "
              "one is 2.1.0\\)"),
])
def test_a_version_asked_for_is_a_new_release_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str,
                                                     why: str) -> None:
    models, src = tmp_path / "models", calibration_csv(tmp_path / "rig.csv", 12)
    for written in ("1.0.0", "2.0.0"):
        assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(src), "--models-dir", str(models),
                     "--version", written]) == 0
    (models / "profiles" / "rig2" / "2.0.0").rename(models / "profiles" / "rig2" / "02.0.0")  # written before
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # a bad flag: the usage, exit 2
        main(["profiles", "calibrate", "--name", "rig2", "--input", str(src), "--models-dir", str(models),
              "--version", version])
    assert exit_.value.code == 2
    assert re.search(f"argument --version: .*{why}", capsys.readouterr().err)
    assert sorted(p.name for p in (models / "profiles" / "rig2").iterdir()) == ["02.0.0", "1.0.0", "ACTIVE"]


def test_nothing_to_list_or_show_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    assert main(["profiles", "list", "--models-dir", str(models)]) == 0
    assert capsys.readouterr().out == "no host profiles calibrated: advisor profiles calibrate --name NAME --input " \
                                      "FILE.csv\n"
    assert main(["profiles", "list", "--models-dir", str(models), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    for name in ("lab", "snu"):  # what the learned model serves is not a stored profile
        assert main(["profiles", "show", name, "--models-dir", str(models)]) == 1
        assert (f"unknown host profile '{name}' (snu and lab are served by the learned cost model, which retraining "
                "calibrates: they are not stored profiles)") in capsys.readouterr().err
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(calibration_csv(tmp_path / "one.csv", 1)),
                 "--models-dir", str(models)]) == 0
    assert "profile rig2 version 1.0.0: 1 migration (" in capsys.readouterr().out


def test_the_summary_says_which_parameters_no_migration_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    frame = pd.read_csv(calibration_csv(tmp_path / "rig.csv", 60), dtype=str, keep_default_na=False)
    frame[frame["technique"] == "postcopy"].to_csv(tmp_path / "postcopy.csv", index=False)
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(tmp_path / "postcopy.csv"),
                 "--models-dir", str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out
    for name in ("round_overhead_ms", "compress_mib_s", "dirty_scale"):  # no pre-copy round, nothing compressed
        assert f"{name:<20} {PRIOR[name]:<6g} {PRIOR[name]:g}  (kept: no migration says anything of it)" in out
    assert "throughput           1 " not in out


def test_every_lab_migration_is_physically_possible(tmp_path: Path) -> None:
    """The slack of the bandwidth check passes all the lab measured (its vCPU readings, a few a little above 1,
    left out: the batch input refuses those)."""
    frame = pd.read_csv(LAB, dtype=str, keep_default_na=False).assign(source="", vcpu_utilization="")
    frame.to_csv(tmp_path / "lab.csv", index=False)
    table, _ = read_calibration(tmp_path / "lab.csv", "rig")
    assert len(table) == len(frame)


def _set(row: int, **cells: str) -> Callable[[pd.DataFrame], None]:
    def edit(frame: pd.DataFrame) -> None:
        for column, value in cells.items():
            frame.loc[row, column] = value
    return edit


def _aborted(frame: pd.DataFrame) -> None:
    frame["outcome"], frame["downtime_ms"] = "aborted", ""


@pytest.mark.parametrize(("edit", "expected"), [
    (_set(2, technique="cold"), "row 3: technique cold: only live migrations are calibrated"),
    # every row is a migration of the profile named: another profile's rows are not mixed in
    (_set(3, source="lab"), "row 4: source 'lab' is not rig2: every row calibrates rig2"),
    (_set(0, host_profile="snu"), "row 1: host_profile 'snu' is not rig2"),
    # nothing to fit on: a profile that learned nothing is not stored as calibrated
    (_aborted, "no completed migration among the 12: nothing to fit on"),
    # what no migration can have measured (row 2: pre-copy, 16 MiB/s cap, 87587 KiB in 5756 ms)
    (_set(1, total_time_ms="1e300"), "row 2: total_time_ms must be at most 86400000 (a day; got 1e+300)"),
    (_set(1, downtime_ms="4000000"), "row 2: downtime_ms must be at most 3600000 (an hour"),
    (_set(1, downtime_ms="6000"), "row 2: downtime_ms 6000 is longer than the whole migration (total_time_ms 5756)"),
    (_set(1, transferred_kib="1e8"), "row 2: transferred_kib 1e+08 cannot pass 16 MiB/s in total_time_ms 5756: at "
                                     "most 184.192 MiB"),
    (_set(1, memory_used_mib="32768"), "row 2: memory_used_mib 32768 (what the first pass sends) cannot pass 16 "
                                       "MiB/s"),
])
def test_a_row_calibration_cannot_fit_is_refused_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Callable[[pd.DataFrame], None], expected: str
) -> None:
    frame = pd.read_csv(calibration_csv(tmp_path / "rig.csv", 12), dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(tmp_path / "bad.csv", index=False)
    models = tmp_path / "models"
    assert main(["profiles", "calibrate", "--name", "rig2", "--input", str(tmp_path / "bad.csv"),
                 "--models-dir", str(models)]) == 2
    assert expected in capsys.readouterr().err
    assert not models.exists()
