"""What a cost prediction is made from, built the same way wherever it is made.

Two sources, one result (`MigrationInputs`, one per row, or `InputTable` for many rows at once):

- serving: `migration_inputs` from a VM, its source and target hosts, what recent samples say of it and the
  dirty-rate forecast, plus what a request overrides;
- training and batch prediction: `InputTable.from_frame` from a table of measured migrations in the columns and
  units of the shared SNU data (`INPUT_COLUMNS`).

The cost models read only these fields (advisor.ml.cost_features builds their feature matrix from an
InputTable), so the inputs a model was trained on are by construction the inputs it is served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from advisor.domain.model import (
    DEFAULT_MAX_DOWNTIME_MS,
    MIB,
    PAGE_SIZE_BYTES,
    DirtyRateForecast,
    Disk,
    Host,
    MigrationInputs,
    Technique,
    Vm,
)
from advisor.domain.text import fmt_time
from advisor.features.dataset import INPUT_COLUMNS
from advisor.features.links import NO_TRAFFIC, LinkTraffic, free_link
from advisor.features.samples import Latest
from advisor.physics.measurement import at_floor_dirty_rate, at_floor_reading, blind_dirty_rate, blind_reading
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR, encrypted_bandwidth
from advisor.physics.working_set import first_pass_mib, longest_window_working_set, resident_fits_vm

__all__ = ["DEFAULT_PROFILE", "INPUT_COLUMNS", "PROFILES", "InputTable", "LinkTraffic", "Overrides",
           "VmObservations", "blind_note", "dirty_rate_note", "free_link", "migration_inputs"]

FloatArray = npt.NDArray[np.float64]

def dirty_pages_to_mib_s(pages_per_s: npt.ArrayLike) -> FloatArray:
    return np.asarray(pages_per_s, dtype=np.float64) * PAGE_SIZE_BYTES / MIB


def mbit_to_mib_s(mbit_s: npt.ArrayLike) -> FloatArray:
    return np.asarray(mbit_s, dtype=np.float64) * 1e6 / 8 / MIB


# The host profiles the learned models know: a profile's migrations were measured on hosts of one kind, and the
# models are calibrated per profile. A row without one is taken as "snu" (the shared data's hosts).
PROFILES: tuple[str, ...] = ("snu", "lab")
DEFAULT_PROFILE = "snu"
# The host label naming a host's profile (e.g. advisor.profile=lab).
PROFILE_LABEL = "advisor.profile"


def blind_note(taken_mib_s: float) -> str:
    return (f"dirty rate unknown: the guest is busy while page sampling reads ~0 (it may rewrite memory with the "
            f"same values, which page sampling cannot see); taken as {taken_mib_s:.1f} MiB/s (as fast as the link "
            "moves) to stay on the safe side")


def dirty_rate_note(inputs: MigrationInputs) -> str | None:
    """What an answer's notes say of a dirty rate nothing measured, or measured blind: where it came from (the
    inputs' `dirty_rate_source` says why it is unknown and what was taken); None when it was measured."""
    return None if inputs.dirty_rate_known else inputs.dirty_rate_source or "dirty rate unknown"


def _optional(frame: pd.DataFrame, column: str) -> FloatArray:
    """A numeric optional column, NaN where missing or empty (validated beforehand where it is given)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    text = frame[column].astype(str).str.strip().replace({"": "nan", "None": "nan"})
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class InputTable:
    """Many rows of MigrationInputs as arrays (MiB, MiB/s, ms), each with its technique.

    `memory_mib` is what a migration copies: memory in use where it was measured (`memory_known`), else all of
    the configured memory. NaN marks what was not measured (`memory_configured_mib`, `working_set_mib`). `assumed`
    says, per row, what was taken for what a table did not give.
    """

    techniques: tuple[Technique, ...]
    memory_mib: FloatArray
    dirty_rate_mib_s: FloatArray
    bandwidth_mib_s: FloatArray
    max_bandwidth_mib_s: FloatArray
    max_downtime_ms: FloatArray
    memory_configured_mib: FloatArray
    memory_known: npt.NDArray[np.bool_]
    deadline_ms: FloatArray  # 0: none
    working_set_mib: FloatArray  # MiB the longer page-sampling window saw rewritten
    profiles: tuple[str, ...]
    nonzero_memory_mib: FloatArray  # measured non-zero or touched memory
    dirty_rate_known: npt.NDArray[np.bool_]  # False: no reading, or a blind one (taken as the usable bandwidth)
    load_per_cpu: FloatArray  # runnable threads per CPU on the busier host; NaN: not measured
    assumed: tuple[str, ...] = ()
    # MiB resident in the guest's QEMU process (NaN, or None for every row: not measured)
    resident_memory_mib: FloatArray | None = None
    # a busy guest's reading at page sampling's floor (None for every row: none), which the physics takes as blind
    dirty_at_floor: npt.NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return len(self.techniques)

    @property
    def usable_mib_s(self) -> FloatArray:
        return np.asarray(np.minimum(self.bandwidth_mib_s, self.max_bandwidth_mib_s), dtype=np.float64)

    @property
    def first_pass_mib(self) -> FloatArray:
        """What QEMU's first pass sends (advisor.physics.first_pass_mib)."""
        return first_pass_mib(self.memory_mib, self.memory_configured_mib, self.nonzero_memory_mib,
                              self.resident_memory_mib)

    def blind_at_floor(self) -> InputTable:
        """The table as the physics reads it: the rows read at page sampling's floor (`dirty_at_floor`) blind like
        the others, their dirty rate unknown and taken as the usable bandwidth, their working set not measured.
        The flag is spent on them, so the table returned reads as itself again. The learned models of schema v4-v7
        read the table as it is, as they were trained."""
        floor = self.dirty_at_floor
        if floor is None or not floor.any():
            return self
        return replace(self, dirty_rate_mib_s=np.where(floor, self.usable_mib_s, self.dirty_rate_mib_s),
                       dirty_rate_known=self.dirty_rate_known & ~floor,
                       working_set_mib=np.where(floor, np.nan, self.working_set_mib), dirty_at_floor=None)

    @property
    def longest_working_set_mib(self) -> FloatArray:
        """The writable working set from the longest window measured (advisor.physics)."""
        return longest_window_working_set(self.dirty_rate_mib_s, self.working_set_mib)

    @staticmethod
    def from_rows(rows: Sequence[tuple[MigrationInputs, Technique]]) -> InputTable:
        def nan(value: float | None) -> float:
            return math.nan if value is None else value

        # every numeric column of every row in one array: one conversion instead of one per column
        (memory, dirty, bandwidth, cap, downtime, configured, deadline, working_set, nonzero,
         load, resident) = np.ascontiguousarray(
            np.array([(i.memory_mib, i.dirty_rate_mib_s, i.bandwidth_mib_s, i.max_bandwidth_mib_s, i.max_downtime_ms,
                       nan(i.memory_configured_mib), i.deadline_ms, nan(i.working_set_mib), nan(i.nonzero_memory_mib),
                       nan(i.load_per_cpu), nan(i.resident_memory_mib))
                      for i, _ in rows], dtype=np.float64).reshape(len(rows), 11).T)
        return InputTable(
            tuple(t for _, t in rows), memory, dirty, bandwidth, cap, downtime, configured,
            np.array([i.memory_source != "configured" for i, _ in rows], dtype=np.bool_), deadline, working_set,
            tuple(i.host_profile or DEFAULT_PROFILE for i, _ in rows),
            nonzero, np.array([i.dirty_rate_known for i, _ in rows], dtype=np.bool_), load,
            resident_memory_mib=resident,
            dirty_at_floor=np.array([i.dirty_rate_at_floor for i, _ in rows], dtype=np.bool_),
        )

    @staticmethod
    def from_frame(frame: pd.DataFrame) -> InputTable:
        """Rows of a table in the columns and units of the shared data (INPUT_COLUMNS, validated beforehand), with
        the optional columns of advisor.features.dataset where given. A row of source `snu` (or none) means what
        the SNU data means: `vm_memory_mib` is memory in use, QEMU's default downtime, no deadline; any other
        source's `vm_memory_mib` is configured memory, and its memory in use is `memory_used_mib`. A row whose
        dirty rate reads ~0 while `vcpu_utilization` says the guest is busy has a blind reading
        (advisor.physics.blind_dirty_rate): its dirty rate is unknown, taken as the usable bandwidth, and its
        working set as not measured."""
        n = len(frame)
        given = _optional(frame, "vm_memory_mib") if "vm_memory_mib" in frame else np.full(n, np.nan)
        # only a missing cell is no profile: a profile may be named `none` or `nan` (a table read as text says so)
        sources = (frame["source"].where(frame["source"].notna(), "").astype(str).str.strip().str.lower()
                   if "source" in frame.columns else pd.Series([""] * n))
        profiles = tuple(s or DEFAULT_PROFILE for s in sources)
        used = _optional(frame, "memory_used_mib")
        downtime = _optional(frame, "max_downtime_ms")
        deadline = _optional(frame, "deadline_ms")
        # The working set as serving measures it: the 4 s page-sampling window (the collectors measure no other).
        # A 2 s reading is accepted and kept in the data, but not used: what serving never sees, training must not.
        windows = np.column_stack([_optional(frame, "working_set_mib"),
                                   4 * dirty_pages_to_mib_s(_optional(frame, "dirty_rate_4s_pages_per_s"))])
        known_window = ~np.isnan(windows).all(axis=1)
        working_set = np.where(known_window, np.nanmax(np.where(np.isnan(windows), -np.inf, windows), axis=1), np.nan)
        dirty = dirty_pages_to_mib_s(pd.to_numeric(frame["dirty_rate_pages_per_s"]).to_numpy(dtype=np.float64))
        bandwidth = mbit_to_mib_s(pd.to_numeric(frame["available_bandwidth_mbps"]).to_numpy(dtype=np.float64))
        cap = pd.to_numeric(frame["max_bandwidth_mib_s"]).to_numpy(dtype=np.float64)
        vcpu = _optional(frame, "vcpu_utilization")
        blind, at_floor = blind_dirty_rate(dirty, working_set, vcpu), at_floor_dirty_rate(dirty, working_set, vcpu)
        dirty = np.where(blind, np.minimum(bandwidth, cap), dirty)
        working_set = np.where(blind, np.nan, working_set)
        snu = np.array([p == "snu" for p in profiles], dtype=np.bool_)  # bool even with no rows
        has_used = ~np.isnan(used)
        memory = np.where(has_used, used, given)
        configured = np.where(snu, np.nan, given)
        assumed = []
        for k in range(n):
            notes = []
            if not sources.iat[k]:
                notes.append("source snu")
            if not snu[k] and not has_used[k]:
                notes.append(f"memory in use unknown: all {given[k]:g} MiB configured copied")
            if np.isnan(downtime[k]):
                notes.append(f"max downtime {DEFAULT_MAX_DOWNTIME_MS:g} ms")
            if np.isnan(deadline[k]):
                notes.append("no deadline")
            if blind[k]:
                notes.append(blind_note(dirty[k]))
            assumed.append("; ".join(notes))
        return InputTable(
            tuple(Technique(str(t).strip()) for t in frame["technique"]),
            memory,
            dirty,
            bandwidth,
            cap,
            np.where(np.isnan(downtime), DEFAULT_MAX_DOWNTIME_MS, downtime),
            configured,
            snu | has_used,
            np.where(np.isnan(deadline), 0.0, deadline),
            working_set,
            profiles,
            _optional(frame, "nonzero_memory_mib"),
            ~blind,
            _optional(frame, "host_load_per_cpu"),
            tuple(assumed),
            _optional(frame, "resident_memory_mib"),
            at_floor,
        )

    def rows(self, dirty_rate_source: str = "") -> list[tuple[MigrationInputs, Technique]]:
        def opt(values: FloatArray, k: int) -> float | None:
            return None if np.isnan(values[k]) else float(values[k])

        resident = self.resident_memory_mib
        return [
            (MigrationInputs(float(self.memory_mib[k]), float(self.dirty_rate_mib_s[k]), float(self.bandwidth_mib_s[k]),
                             float(self.max_bandwidth_mib_s[k]), float(self.max_downtime_ms[k]),
                             dirty_rate_source=(dirty_rate_source if self.dirty_rate_known[k]
                                                else blind_note(float(self.dirty_rate_mib_s[k]))),
                             memory_configured_mib=opt(self.memory_configured_mib, k),
                             memory_source="in use" if self.memory_known[k] else "configured",
                             working_set_mib=opt(self.working_set_mib, k), deadline_ms=float(self.deadline_ms[k]),
                             host_profile=self.profiles[k], nonzero_memory_mib=opt(self.nonzero_memory_mib, k),
                             dirty_rate_known=bool(self.dirty_rate_known[k]),
                             load_per_cpu=opt(self.load_per_cpu, k),
                             resident_memory_mib=None if resident is None else opt(resident, k),
                             dirty_rate_at_floor=self.dirty_at_floor is not None and bool(self.dirty_at_floor[k])), t)
            for k, t in enumerate(self.techniques)
        ]


@dataclass(frozen=True)
class Overrides:
    """What a request says instead of what the advisor observed (what-if questions); None keeps the observation."""

    dirty_rate_mib_s: float | None = None
    bandwidth_mib_s: float | None = None
    max_bandwidth_mib_s: float | None = None
    max_downtime_ms: float | None = None
    deadline_ms: float | None = None


@dataclass(frozen=True)
class VmObservations:
    """What recent samples say of one VM: its newest dirty-rate and memory-use readings."""

    dirty_rate: Latest | None = None
    memory_used: Latest | None = None
    working_set: Latest | None = None
    cpu_utilization: Latest | None = None  # the share of its vCPUs the guest keeps busy
    disk_write_rate: Latest | None = None  # MiB/s written to its local disks (the hypervisor's block statistics)
    resident_memory: Latest | None = None  # MiB resident in its QEMU process (libvirt's memoryStats rss)


def migration_inputs(
    vm: Vm,
    source: Host,
    target: Host | None,
    observed: VmObservations,
    forecast: DirtyRateForecast | None,
    overrides: Overrides = Overrides(),
    traffic: LinkTraffic = NO_TRAFFIC,
    *,
    tls: bool = False,
    load_per_cpu: float | None = None,
) -> MigrationInputs:
    """The inputs of a prediction for moving `vm` from `source` (to `target`, when known: the slower link of the
    two bounds the bandwidth, less the traffic already on it, `free_link`; with `tls`, less what encrypting the
    stream costs, advisor.physics.transport). The dirty rate is, in order: the request's, the forecast's mean (its
    p90 kept as a possible burst), the newest sample's; the memory to copy is the memory in use when a sample says
    so; `load_per_cpu` is the busier host's runnable threads per CPU, where a sample says."""
    burst: float | None = None
    link = min(source.network_bandwidth_mib_s, (target or source).network_bandwidth_mib_s)
    free, bandwidth_source = free_link(source, target, traffic)
    if tls:
        free, bandwidth_source = (encrypted_bandwidth(free),
                                  f"{bandwidth_source}; x{TLS_THROUGHPUT_FACTOR:g} for TLS's overhead")
    if overrides.bandwidth_mib_s is not None:
        free, bandwidth_source = overrides.bandwidth_mib_s, "request override"
    bandwidth = free
    # the cap is the migration's own setting: by default the link's speed, which a busy link does not lower
    cap = (link if overrides.bandwidth_mib_s is None else free) if overrides.max_bandwidth_mib_s is None \
        else overrides.max_bandwidth_mib_s
    known = True
    if overrides.dirty_rate_mib_s is not None:
        dirty, dirty_source = overrides.dirty_rate_mib_s, "request override"
    elif forecast is not None:
        dirty = forecast.mean_mib_s
        m = forecast.model
        dirty_source = (f"p90 {forecast.p90_mib_s:.1f} MiB/s; forecast by {m.name} {m.version} from "
                        f"{forecast.samples_used} samples over {forecast.window_s:.0f} s"
                        + (f" (fallback: {m.fallback_reason})" if m.fallback_reason else ""))
        burst = forecast.p90_mib_s if forecast.p90_mib_s > forecast.mean_mib_s else None
    elif observed.dirty_rate is not None:
        dirty = observed.dirty_rate.value
        dirty_source = f"latest sample, {fmt_time(observed.dirty_rate.time_s)} (too little history to forecast)"
    else:
        # Unknown is never idle: take the guest as dirtying as fast as the link moves, the pessimistic case in
        # which pre-copy does not converge by itself, so the choice and its limits stay on the safe side.
        dirty, known = min(bandwidth, cap), False
        dirty_source = (f"no dirty-rate sample: unknown, taken as {dirty:.1f} MiB/s (as fast as the link moves) "
                        "to stay on the safe side")
    working_set = observed.working_set.value if observed.working_set is not None else None
    # a measured rate (forecast or sample) of a busy guest reading ~0 is blind; a request's own figure is its word
    measured_rate = known and overrides.dirty_rate_mib_s is None
    cpu = observed.cpu_utilization if measured_rate else None
    window, busy = math.nan if working_set is None else working_set, math.nan if cpu is None else cpu.value
    at_floor = at_floor_reading(dirty, window, busy)
    if cpu is not None and blind_reading(dirty, window, busy):
        dirty, known, working_set, burst = min(bandwidth, cap), False, None, None
        dirty_source = f"{blind_note(dirty)} (vCPUs {cpu.value:.0%} busy, sample {fmt_time(cpu.time_s)})"
    used = observed.memory_used
    # a sample above the VM's memory is from before it was made smaller: not of the VM as it is (so unknown)
    measured = used is not None and 0 < used.value <= vm.memory_mib
    memory = used.value if used is not None and measured else float(vm.memory_mib)
    memory_source = f"in use, sample {fmt_time(used.time_s)}" if used is not None and measured else "configured"
    if working_set is not None:
        working_set = min(working_set, float(vm.memory_mib))  # at most all of it, whatever it was before
    resident = observed.resident_memory
    resident_mib = resident.value if resident and resident_fits_vm(resident.value, vm.memory_mib) else None
    return MigrationInputs(
        memory_mib=memory,
        dirty_rate_mib_s=dirty,
        bandwidth_mib_s=bandwidth,
        max_bandwidth_mib_s=cap,
        max_downtime_ms=DEFAULT_MAX_DOWNTIME_MS if overrides.max_downtime_ms is None else overrides.max_downtime_ms,
        dirty_rate_source=dirty_source,
        burst_dirty_rate_mib_s=burst,
        dirty_rate_known=known,
        dirty_rate_at_floor=at_floor,
        memory_configured_mib=float(vm.memory_mib),
        memory_source=memory_source,
        deadline_ms=overrides.deadline_ms or 0.0,
        working_set_mib=working_set,
        resident_memory_mib=resident_mib,
        host_profile=source.labels.get(PROFILE_LABEL, ""),
        bandwidth_source=bandwidth_source,
        load_per_cpu=load_per_cpu,
        **disk_inputs(vm.local_disks, observed.disk_write_rate.value if observed.disk_write_rate else None),
    )


def disk_inputs(local: Sequence[Disk], measured_write_rate_mib_s: float | None = None) -> dict[str, Any]:
    """MigrationInputs' disk fields of a VM's local disks: their used and total MiB, and their summed write rate:
    the newest sample's (`measured_write_rate_mib_s`, the hypervisor's block statistics), else the inventory's
    (None when any of them was not measured: unknown, never 0)."""
    if not local:
        return {}
    rates = [d.write_rate_mib_s for d in local]
    pushed = None if None in rates else float(sum(r for r in rates if r is not None))
    return {"local_disk_used_mib": float(sum(d.used_mib for d in local)),
            "local_disk_size_mib": float(sum(d.size_mib for d in local)),
            "disk_write_rate_mib_s": pushed if measured_write_rate_mib_s is None else measured_write_rate_mib_s}
