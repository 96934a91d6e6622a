"""What `advisor predict cost` refuses of its input CSV, row by row, before anything is predicted (the physics
serve the batch: no trained model needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from advisor.ml.batch import BatchInputError, predict_csv
from advisor.ml.predictor import AnalyticPredictor
from advisor.ml.profile_input import read_calibration

HEADER = "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s"


def refused(tmp_path: Path, text: str) -> str:
    """The message refusing `text` as an input file; nothing is written."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text)
    with pytest.raises(BatchInputError) as caught:
        predict_csv(src, dst, AnalyticPredictor())
    assert not dst.exists()
    return str(caught.value)


def test_a_header_alone_is_refused(tmp_path: Path) -> None:
    assert "no rows: the file has a header and nothing else" in refused(tmp_path, HEADER + "\n")


@pytest.mark.parametrize(("row", "expected"), [
    # what the gRPC API accepts of the same quantity, in the column's unit: nothing overflows to inf
    ("precopy,1024,100,1e308,64", "available_bandwidth_mbps must be in [8.388608, 1677721.6] ('1e308')"),
    ("precopy,1e308,100,10000,64", "vm_memory_mib must be in [1, 25165824] ('1e308')"),
    ("precopy,1e300,100,10000,64", "vm_memory_mib must be in [1, 25165824] ('1e300')"),
    ("precopy,0,100,10000,64", "vm_memory_mib must be in [1, 25165824] ('0')"),
    ("precopy,1024,6e7,10000,64", "dirty_rate_pages_per_s must be in [0, 51200000] ('6e7')"),
    ("precopy,1024,100,1e-300,64", "available_bandwidth_mbps must be in [8.388608, 1677721.6] ('1e-300')"),
    ("precopy,1024,100,10000,300000", "max_bandwidth_mib_s must be in [1, 200000] ('300000')"),
    ("precopy,1024,100,10000,0.5", "max_bandwidth_mib_s must be in [1, 200000] ('0.5')"),
    ("precopy,1024,-1,10000,64", "dirty_rate_pages_per_s is negative ('-1')"),
])
def test_a_required_value_beyond_what_the_api_accepts_is_refused(tmp_path: Path, row: str, expected: str) -> None:
    assert f"row 1: {expected}" in refused(tmp_path, f"{HEADER}\n{row}\n")


@pytest.mark.parametrize(("column", "value", "high"), [
    ("memory_used_mib", "3e7", "25165824"),
    ("working_set_mib", "3e7", "25165824"),
    ("nonzero_memory_mib", "3e7", "25165824"),
    ("resident_memory_mib", "3e7", "25231360"),  # the VM's memory and QEMU's own
    ("max_downtime_ms", "4e6", "3600000"),
    ("deadline_ms", "1e8", "86400000"),
    ("dirty_rate_4s_pages_per_s", "1e8", "51200000"),
    ("vcpu_utilization", "1.5", "1"),
    ("host_load_per_cpu", "4096", "1000"),  # a load average not divided by the host's CPUs
    ("shutdown_timeout_ms", "1e300", "3600000"),
])
def test_an_optional_value_beyond_what_the_api_accepts_is_refused(tmp_path: Path, column: str, value: str,
                                                                   high: str) -> None:
    text = refused(tmp_path, f"{HEADER},{column}\nprecopy,1024,100,10000,64,{value}\n")
    assert f"row 1: {column} must be in [0, {high}] ('{value}')" in text


@pytest.mark.parametrize("column", ["memory_used_mib", "working_set_mib", "nonzero_memory_mib"])
def test_memory_above_the_vms_is_refused(tmp_path: Path, column: str) -> None:
    # as PushSamples refuses a sample whose memory in use exceeds the VM's memory
    text = refused(tmp_path, f"{HEADER},{column}\nprecopy,1024,100,10000,64,1024\nprecopy,1024,100,10000,64,4096\n")
    assert f"row 2: {column} ('4096') exceeds vm_memory_mib ('1024')" in text and "row 1:" not in text


def test_resident_memory_above_the_vms_is_qemus_own_and_accepted(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(f"{HEADER},source,memory_used_mib,resident_memory_mib\n"
                   "postcopy,1024,0,10000,64,lab,190,\npostcopy,1024,0,10000,64,lab,190,1130\n")
    predict_csv(src, dst, AnalyticPredictor())
    assert pd.read_csv(dst)["resident_memory_mib"].fillna(0).tolist() == [0, 1130]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "the file is empty: no header, no rows"),
    # pandas read the second as `vm_memory_mib.1`, and predicted from the first
    (f"{HEADER},vm_memory_mib\nprecopy,1024,100,10000,64,2048\n",
     "the header names column 'vm_memory_mib' more than once (columns 2, 6)"),
    # pandas took the first field as the index, and refused the row as of technique '1024'
    (f"{HEADER}\nprecopy,1024,100,10000,64,999\n", "row 1: 6 fields where the header has 5 [line 2]"),
    (f"{HEADER}\nprecopy,1024,100,10000,64\nprecopy,1024,100,10000\n",
     "row 2: 4 fields where the header has 5 [line 3]"),
    # a row's line is the file's, blank lines and a quoted field over two lines counted
    (f"{HEADER},note\nprecopy,1024,100,10000,64,a\n\n\nprecopy,-1,100,10000,64,b\n",
     "row 2: vm_memory_mib is negative ('-1') [line 5]"),
    (f'{HEADER},note\nprecopy,1024,100,10000,64,"two\nlines"\nprecopy,-1,100,10000,64,b\n',
     "row 2: vm_memory_mib is negative ('-1') [line 4]"),
    (f"\ufeff{HEADER}\r\nprecopy,1024,100,10000,64\r\n\r\nprecopy,-1,100,10000,64\r\n",
     "row 2: vm_memory_mib is negative ('-1') [line 4]"),
])
def test_the_file_is_read_as_written(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


def test_a_bom_crlf_and_blank_lines_are_read_through(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_bytes(f"\ufeff{HEADER},note\r\n\r\nprecopy,1024,100,10000,64,\"a, b\"\r\n\r\n".encode())
    assert predict_csv(src, dst, AnalyticPredictor()) == 1
    assert dst.read_text().splitlines()[1].startswith('precopy,1024,100,10000,64,"a, b",')


@pytest.mark.parametrize("output", ["absent/out.csv", "."])
def test_an_output_that_cannot_be_written_is_named_as_given(tmp_path: Path, output: str) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / output
    src.write_text(f"{HEADER}\nprecopy,1024,100,10000,64\n")
    with pytest.raises(OSError) as caught:
        predict_csv(src, dst, AnalyticPredictor())
    assert caught.value.filename == str(dst) and ".tmp" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no temporary file left behind


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("max_downtime_ms", "inf", "max_downtime_ms is not finite ('inf')"),
    ("deadline_ms", "-inf", "deadline_ms is not finite ('-inf')"),
    ("working_set_mib", "nan", "working_set_mib is not a number ('nan')"),
])
def test_an_optional_value_that_is_no_finite_number_is_said_so(tmp_path: Path, column: str, value: str,
                                                                 expected: str) -> None:
    text = refused(tmp_path, f"{HEADER},{column}\nprecopy,1024,100,10000,64,{value}\n")
    assert f"row 1: {expected} [line 2]" in text and text.count("row 1:") == 1


MEASURED = ",total_time_ms,downtime_ms,transferred_kib,outcome"


@pytest.mark.parametrize(("measured", "expected"), [
    ("-5,30,1000,completed", "total_time_ms is negative ('-5')"),  # once, not also "must be positive"
    ("0,30,1000,completed", "total_time_ms must be positive ('0')"),
    ("inf,30,1000,completed", "total_time_ms is not finite ('inf')"),
    ("nan,30,1000,completed", "total_time_ms is not a number ('nan')"),
    ("5000,30,-1,completed", "transferred_kib is negative ('-1')"),
])
def test_a_bad_measured_value_is_said_once(tmp_path: Path, measured: str, expected: str) -> None:
    src = tmp_path / "runs.csv"
    src.write_text(f"{HEADER}{MEASURED}\nprecopy,1024,100,10000,64,{measured}\n")
    with pytest.raises(BatchInputError) as caught:
        read_calibration(src, "rig2")
    assert caught.value.problems[0].reason == expected and len(caught.value.problems) == 1
