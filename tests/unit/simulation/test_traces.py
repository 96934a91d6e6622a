"""Trace loaders: errors are one clear TraceError; Bitbrains is resampled onto the 5-minute grid."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from advisor.simulation.traces import TraceError, load_bitbrains, load_planetlab


def write(path, text):
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def test_planetlab_loader_reads_types_and_pads_like_cloudsim(tmp_path):
    header = "cloudsim_vm_index,vm,cloudsim_vm_type,cloudsim_vm_mips,cloudsim_vm_ram_mb,t0,t1,t2\n"
    path = write(tmp_path / "20110101.csv.gz", header + "0,a,0,2500,870,10,20,30\n1,b,3,500,613,0,0,100\n")
    trace = load_planetlab(path)
    assert trace.day == "20110101" and trace.vm_names == ("a", "b")
    assert trace.vm_mips.tolist() == [2500, 500] and trace.vm_ram_mb.tolist() == [870, 613]
    assert trace.utilization.tolist() == [[0.1, 0.0], [0.2, 0.0], [0.3, 1.0], [0.3, 1.0]]
    assert trace.head(2).utilization.tolist() == [[0.1, 0.0], [0.2, 0.0], [0.3, 1.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", "not a PlanetLab trace"),
        ("vm,cloudsim_vm_type,cloudsim_vm_mips,cloudsim_vm_ram_mb,t0,t2\na,0,2500,870,1,2\n", "without gaps"),
        ("vm,cloudsim_vm_type,cloudsim_vm_mips,cloudsim_vm_ram_mb,t0\na,0,2500,870,150\n", "percentages"),
        ("vm,cloudsim_vm_type,cloudsim_vm_mips,cloudsim_vm_ram_mb,t0\na,0,0,870,1\n", "positive"),
        ("vm,cloudsim_vm_type,cloudsim_vm_mips,cloudsim_vm_ram_mb,t0\na,0,x,870,1\n", "non-numeric"),
    ],
)
def test_planetlab_loader_rejects_bad_input(tmp_path, text, message):
    with pytest.raises(TraceError, match=message):
        load_planetlab(write(tmp_path / "bad.csv.gz", text))


def test_unreadable_files(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        load_planetlab(tmp_path / "missing.csv.gz")
    (tmp_path / "junk.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(TraceError, match="not a readable CSV"):
        load_planetlab(tmp_path / "junk.csv.gz")


def test_bitbrains_resampling(tmp_path):
    header = "vm,timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,memory_usage_kib\n"
    rows = [
        "1,1000,2,5200,2600,1048576",  # bin 0: 50 %, 1 GiB
        "1,1350,2,5200,6000,2097152",  # bin 1: clipped to 100 %, 2 GiB
        "2,1000,16,41600,4160,0",  # 16 vCPUs, capped at 12 x 2600; memory 0 = not measured -> 1 MB
        "2,1900,16,41600,0,524288",  # bin 3 (bin 1 and 2 carried forward)
    ]
    trace = load_bitbrains(write(tmp_path / "bb.csv.gz", header + "\n".join(rows) + "\n"), n_samples=4)
    assert trace.vm_names == ("1", "2")
    assert trace.vm_mips.tolist() == [2600, 2600] and trace.vm_pes.tolist() == [2, 12]
    assert trace.utilization[:4, 0].tolist() == [0.5, 1.0, 1.0, 1.0]
    assert trace.utilization[:4, 1].tolist() == pytest.approx([4160 / 31200] * 3 + [0.0])
    assert trace.memory_mb is not None
    assert trace.memory_mb[:4, 1].tolist() == [1.0, 1.0, 1.0, 512.0]
    assert trace.vm_ram_mb.tolist() == [2048.0, 512.0]
    assert np.isfinite(trace.utilization).all()
    with pytest.raises(TraceError, match="no samples on day 3"):
        load_bitbrains(tmp_path / "bb.csv.gz", day=3, n_samples=4)
