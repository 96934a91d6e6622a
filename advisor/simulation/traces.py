"""Trace loaders: a PlanetLab day as CloudSim reads it, and a Bitbrains day resampled onto the same 5-minute grid.

PlanetLab: one VM per row, in file order (CloudSim's), its type from the `cloudsim_vm_*` columns; CPU % per
5 minutes; like CloudSim's UtilizationModelPlanetLabInMemory the 289th sample repeats the 288th.

Bitbrains (GWA-T-12 Rnd): the VMs are 1-32 vCPU servers at 2.4-2.93 GHz using up to ~37 GB, which the 800
PlanetLab hosts (2 PEs of 1.86/2.66 GHz, 4 GB) cannot hold: a 4-vCPU VM would exceed any host at its full MIPS
and CloudSim's initial placement needs the full MIPS. So Bitbrains runs on a documented host type instead
(datacenter.X3550_X5675: 12 x 3067 MHz, 64 GB, 1 Gbit/s, its published SPECpower curve; 200 hosts by default),
with RAM as a second dimension: VM RAM is the peak memory in use over the replayed day (what placement must
respect), and the memory in use at each step is what a migration has to move (the `memory_mb` series).
A VM's MIPS per PE is its core clock, its PEs its vCPUs (capped at the host's 12 PEs: three VMs have 16-32);
utilisation is usage / capacity clipped to [0, 1]. Samples are taken per 5-minute bin (the last in the bin),
gaps are carried forward and a VM's leading gap takes its first value, so every VM in the window runs all day;
memory readings of 0 (not measured) count as 1 MB.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.simulation.arrays import FloatArray, IntArray, frozen

PLANETLAB_COLUMNS = ("vm", "cloudsim_vm_type", "cloudsim_vm_mips", "cloudsim_vm_ram_mb")
VM_BW_MBIT_S = 100.0  # CloudSim's VM_BW (100 Mbit/s), reserved only when a VM is created
BITBRAINS_COLUMNS = ("vm", "timestamp_s", "cpu_cores", "cpu_capacity_mhz", "cpu_usage_mhz", "memory_usage_kib")


class TraceError(ValueError):
    """The input is not a trace this loader understands (message says why, in one line)."""


@dataclass(frozen=True)
class Trace:
    """CPU utilisation per VM per step, plus each VM's size. `utilization` is (n_samples + 1, n_vms)."""

    source: str
    day: str
    interval_s: float
    utilization: FloatArray
    vm_names: tuple[str, ...]
    vm_mips: FloatArray  # per PE
    vm_pes: IntArray
    vm_ram_mb: FloatArray
    vm_bw_mbit_s: FloatArray
    memory_mb: FloatArray | None = None  # (n_samples + 1, n_vms) memory in use, when the trace has it

    @property
    def n_vms(self) -> int:
        return int(self.utilization.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.utilization.shape[0]) - 1

    @property
    def duration_s(self) -> float:
        return self.n_samples * self.interval_s

    def head(self, n_samples: int) -> Trace:
        """The first n_samples steps, keeping the next sample for interpolation: a run over the head is exactly
        the first n_samples x interval of a run over the whole trace."""
        if not 1 <= n_samples <= self.n_samples:
            raise TraceError(f"cannot keep {n_samples} of {self.n_samples} samples")
        memory = None if self.memory_mb is None else frozen(self.memory_mb[: n_samples + 1])
        return replace(self, utilization=frozen(self.utilization[: n_samples + 1]), memory_mb=memory)


def _read_csv(path: Path, usecols: tuple[str, ...] | None = None) -> pd.DataFrame:
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, not a trace file")
    if not path.is_file():
        raise TraceError(f"{path}: no such file")
    try:
        return pd.read_csv(path, usecols=usecols)
    except (ValueError, OSError, EOFError, gzip.BadGzipFile, pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TraceError(f"{path}: not a readable CSV ({reason})") from None


def load_planetlab(path: str | Path) -> Trace:
    """One PlanetLab day from the shared CSV (`t0`..`tN` CPU %, `cloudsim_vm_*` VM types)."""
    path = Path(path)
    frame = _read_csv(path)
    missing = [c for c in PLANETLAB_COLUMNS if c not in frame.columns]
    samples = sorted((c for c in frame.columns if re.fullmatch(r"t\d+", str(c))), key=lambda c: int(str(c)[1:]))
    if missing or not samples:
        raise TraceError(f"{path}: not a PlanetLab trace (missing {', '.join(missing) or 't0..tN columns'})")
    if [int(str(c)[1:]) for c in samples] != list(range(len(samples))):
        raise TraceError(f"{path}: sample columns must be t0..t{len(samples) - 1} without gaps")
    if frame.empty:
        raise TraceError(f"{path}: no VMs")
    try:
        percent = frame[samples].to_numpy(dtype=np.float64)
        mips = frame["cloudsim_vm_mips"].to_numpy(dtype=np.float64)
        ram = frame["cloudsim_vm_ram_mb"].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise TraceError(f"{path}: non-numeric CPU or VM-type values") from None
    if not np.isfinite(percent).all() or (percent < 0).any() or (percent > 100).any():
        raise TraceError(f"{path}: CPU values must be percentages in [0, 100]")
    if not (np.isfinite(mips).all() and np.isfinite(ram).all() and (mips > 0).all() and (ram > 0).all()):
        raise TraceError(f"{path}: VM MIPS and RAM must be positive")
    utilization = percent.T / 100.0  # CloudSim: Integer.valueOf(line) / 100.0
    utilization = np.vstack([utilization, utilization[-1:]])
    match = re.search(r"(\d{8})", path.name)
    return Trace(
        source="planetlab",
        day=match.group(1) if match else path.name.split(".")[0],
        interval_s=300.0,
        utilization=frozen(np.ascontiguousarray(utilization)),
        vm_names=tuple(str(v) for v in frame["vm"]),
        vm_mips=frozen(mips),
        vm_pes=frozen(np.ones(len(frame), dtype=np.int64)),
        vm_ram_mb=frozen(ram),
        vm_bw_mbit_s=frozen(np.full(len(frame), VM_BW_MBIT_S)),
    )


def read_bitbrains(path: str | Path) -> pd.DataFrame:
    """A Bitbrains file's samples (the columns the loader uses), read once to cut into days with `bitbrains_day`."""
    path = Path(path)
    frame = _read_csv(path)
    missing = [c for c in BITBRAINS_COLUMNS if c not in frame.columns]
    if missing:
        raise TraceError(f"{path}: not a Bitbrains trace (missing {', '.join(missing)})")
    frame = frame[list(BITBRAINS_COLUMNS)].dropna()
    if frame.empty:
        raise TraceError(f"{path}: no samples")
    frame.attrs["source"] = path.name.split(".")[0]
    return frame


def bitbrains_day_count(frame: pd.DataFrame, n_samples: int = 288, interval_s: float = 300.0) -> int:
    """How many days (of n_samples x interval) start within the samples of `read_bitbrains`: the last may be short
    by a few samples, which are carried forward."""
    span = float(frame["timestamp_s"].max()) - float(frame["timestamp_s"].min())
    return max(1, math.ceil(span / (n_samples * interval_s)))


def load_bitbrains(
    path: str | Path, day: int = 0, n_samples: int = 288, interval_s: float = 300.0, max_pes: int = 12
) -> Trace:
    """Day `day` (0-based, from the first timestamp) of a Bitbrains file, on a 5-minute grid (see module doc)."""
    return bitbrains_day(read_bitbrains(path), day, n_samples, interval_s, max_pes)


def bitbrains_day(
    frame: pd.DataFrame, day: int = 0, n_samples: int = 288, interval_s: float = 300.0, max_pes: int = 12
) -> Trace:
    """Day `day` of samples read by `read_bitbrains` (see the module doc)."""
    name = str(frame.attrs.get("source", "bitbrains"))
    start = float(frame["timestamp_s"].min()) + day * n_samples * interval_s
    step = np.floor((frame["timestamp_s"].to_numpy(dtype=np.float64) - start) / interval_s)
    window = frame[(step >= 0) & (step < n_samples) & (frame["cpu_cores"] > 0) & (frame["cpu_capacity_mhz"] > 0)]
    if window.empty:
        raise TraceError(f"{name}: no samples on day {day}")
    window = window.assign(step=np.floor((window["timestamp_s"] - start) / interval_s).astype(np.int64))
    last = window.sort_values(["vm", "timestamp_s"]).groupby(["vm", "step"]).last()
    grid = pd.RangeIndex(n_samples, name="step")

    def pivot(column: str) -> pd.DataFrame:
        table = last[column].unstack("vm").reindex(grid)
        return table.ffill().bfill()

    cores = pivot("cpu_cores")
    pe_mhz = (pivot("cpu_capacity_mhz") / cores).median().to_numpy(dtype=np.float64)
    pes = np.minimum(cores.max().to_numpy(dtype=np.float64), max_pes).astype(np.int64)
    capacity = pe_mhz * pes
    usage = pivot("cpu_usage_mhz").to_numpy(dtype=np.float64)
    utilization = np.clip(usage / capacity, 0.0, 1.0)
    memory = np.maximum(pivot("memory_usage_kib").to_numpy(dtype=np.float64) / 1024.0, 1.0)  # 0 = not measured
    ram = memory.max(axis=0)
    return Trace(
        source="bitbrains",
        day=f"{name} day {day}",
        interval_s=interval_s,
        utilization=frozen(np.vstack([utilization, utilization[-1:]])),
        vm_names=tuple(str(v) for v in cores.columns),
        vm_mips=frozen(pe_mhz),
        vm_pes=frozen(pes),
        vm_ram_mb=frozen(ram),
        vm_bw_mbit_s=frozen(np.full(len(pes), VM_BW_MBIT_S)),
        memory_mb=frozen(np.vstack([memory, memory[-1:]])),
    )
