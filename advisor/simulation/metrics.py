"""Energy and SLA accounting, as ratios of sums the way CloudSim's Helper.printResults computes them.

- energy: per host and frame, 0 if the host's utilisation at the frame's start is 0, else
  (P(u_start) + (P(u_end) - P(u_start)) / 2) x frame length (PowerHost.getEnergyLinearInterpolation);
- SLATAH = sum over hosts of time active with used < requested MIPS / sum of time active (getSlaTimePerActiveHost);
- PDM = sum over VMs of (requested - allocated) x dt while the VM migrates out / sum of requested x dt
  (getSlaMetrics "underallocated_migration");
- SLAV = SLATAH x PDM, ESV = energy (kWh) x SLAV.
All are fractions. Frames before the first update carry no state and count for nothing, as in CloudSim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from advisor.simulation.arrays import BoolArray, FloatArray, IntArray
from advisor.simulation.datacenter import Datacenter
from advisor.simulation.power import power_w
from advisor.simulation.traces import Trace


@dataclass(frozen=True)
class SimulationResult:
    policy: str
    trace: str
    day: str
    hosts: int
    vms: int
    energy_kwh: float
    slatah: float
    pdm: float
    slav: float
    esv: float
    migrations: int
    repeated_migrations: int  # migrations of a VM already moved by the same decision (CloudSim's underload step)
    sla_overall: float  # CloudSim's "overall": MIPS-seconds not allocated / requested, for all causes
    updates: int
    vms_removed: int
    mean_active_hosts: float
    ram_overcommitted_host_updates: int  # host-updates whose VMs' RAM exceeds the host's (CloudSim ignores RAM)
    utilization_clamped: int  # host-frames whose used MIPS exceeded 1.01 x capacity (CloudSim would abort)
    wall_time_s: float
    migration_s: float = 0.0  # the migrations' durations, summed (each makes its target SLA-violating meanwhile)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def cloudsim_utilization(used: FloatArray, total: FloatArray) -> FloatArray:
    """HostDynamicWorkload.getUtilizationOfCpu: used / total, with (1, 1.01) rounded down to 1."""
    u = used / total
    clamped: FloatArray = np.where((u > 1) & (u < 1.01), 1.0, u)
    return clamped


class Accumulator:
    """Running sums over frames; mutable, owned by one simulation."""

    def __init__(self, datacenter: Datacenter) -> None:
        self.dc = datacenter
        self.energy_ws = 0.0
        self.active_s = 0.0
        self.violation_s = 0.0
        self.host_violation_s = np.zeros(datacenter.n_hosts)  # per host: what SLATAH's numerator sums
        self.migration_s = 0.0
        self.requested_mips_s = 0.0
        self.allocated_mips_s = 0.0
        self.migration_loss_mips_s = 0.0
        self.vm_migration_loss_mips_s = np.zeros(0)  # per VM, sized at the first frame
        self.migrations = 0
        self.repeated_migrations = 0
        self.vms_removed = 0
        self.clamped = 0
        self.active_host_sum = 0
        self.observations = 0
        self.ram_overcommitted = 0

    def frame(
        self,
        dt: float,
        used_start: FloatArray,
        used_end: FloatArray,
        requested_start: FloatArray,
        vm_allocated: FloatArray,
        vm_requested: FloatArray,
        vm_migrating: BoolArray,
        vm_present: BoolArray,
        *,
        sla: bool,
    ) -> None:
        """Account one frame of length dt from the states at its start (and, for energy, its end)."""
        total = np.asarray(self.dc.total_mips)
        tables = np.asarray(self.dc.power_tables)
        u_start = cloudsim_utilization(used_start, total)
        u_end = cloudsim_utilization(used_end, total)
        self.clamped += int((u_start > 1).sum())
        p_start, p_end = power_w(tables, u_start), power_w(tables, u_end)
        self.energy_ws += float(np.where(u_start == 0, 0.0, (p_start + (p_end - p_start) / 2) * dt).sum())
        if self.vm_migration_loss_mips_s.shape != vm_present.shape:
            self.vm_migration_loss_mips_s = np.zeros(vm_present.shape[0])
        if not sla:
            return
        active = used_start > 0
        self.active_s += dt * int(active.sum())
        violating = active & (used_start < requested_start)
        self.violation_s += dt * int(violating.sum())
        self.host_violation_s += dt * violating
        req, alloc = vm_requested[vm_present], vm_allocated[vm_present]
        self.requested_mips_s += float((req * dt).sum())
        self.allocated_mips_s += float((alloc * dt).sum())
        lost = vm_migrating[vm_present] & (alloc < req)
        self.migration_loss_mips_s += float(((req - alloc)[lost] * dt).sum())
        losing = vm_migrating & vm_present & (vm_allocated < vm_requested)
        if losing.any():
            self.vm_migration_loss_mips_s[losing] += (vm_requested - vm_allocated)[losing] * dt

    def observe(self, used: FloatArray, vm_host: IntArray, vm_ram_mb: FloatArray) -> None:
        """Per periodic update: active hosts, and hosts whose VMs' RAM exceeds theirs."""
        self.observations += 1
        self.active_host_sum += int((used > 0).sum())
        placed = vm_host >= 0
        ram = np.bincount(vm_host[placed], weights=vm_ram_mb[placed], minlength=self.dc.n_hosts)
        self.ram_overcommitted += int((ram > np.asarray(self.dc.ram_mb)).sum())

    def result(self, policy: str, trace: Trace, updates: int, wall_time_s: float) -> SimulationResult:
        energy_kwh = self.energy_ws / 3.6e6
        slatah = self.violation_s / self.active_s if self.active_s > 0 else 0.0
        pdm = self.migration_loss_mips_s / self.requested_mips_s if self.requested_mips_s > 0 else 0.0
        overall = (
            (self.requested_mips_s - self.allocated_mips_s) / self.requested_mips_s if self.requested_mips_s else 0.0
        )
        return SimulationResult(
            policy=policy,
            trace=trace.source,
            day=trace.day,
            hosts=self.dc.n_hosts,
            vms=trace.n_vms,
            energy_kwh=energy_kwh,
            slatah=slatah,
            pdm=pdm,
            slav=slatah * pdm,
            esv=energy_kwh * slatah * pdm,
            migrations=self.migrations,
            repeated_migrations=self.repeated_migrations,
            sla_overall=overall,
            updates=updates,
            vms_removed=self.vms_removed,
            mean_active_hosts=self.active_host_sum / self.observations if self.observations else 0.0,
            ram_overcommitted_host_updates=self.ram_overcommitted,
            utilization_clamped=self.clamped,
            wall_time_s=wall_time_s,
            migration_s=self.migration_s,
        )
