"""What a consolidation policy sees and returns: the only contract between the simulator and any policy.

At t = 0 the simulator asks `initial_placement` for a host per VM (every VM still "being instantiated": its
request is its full MIPS, as in CloudSim). At every later scheduling update it hands `decide` a read-only
`Snapshot` and starts the returned migrations in order. The simulator never looks inside a policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from advisor.simulation.allocation import IN, OUT
from advisor.simulation.arrays import BoolArray, FloatArray, IntArray
from advisor.simulation.datacenter import Datacenter
from advisor.simulation.migration import MigrationTimeModel


@dataclass(frozen=True)
class Migration:
    """Move `vm` to host `target`. Repeating a VM in one list is allowed (CloudSim can, see docs/simulation.md)."""

    vm: int
    target: int


@dataclass(frozen=True)
class InFlightMigration:
    vm: int
    source: int
    target: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Snapshot:
    """The state at `time_s`, after the update at that time. Arrays are read-only; index VMs and hosts by position.

    Residencies list every copy of a VM on a host in CloudSim's vmList order (a migrating VM has an OUT copy on
    its source and an IN copy on its target); `vm_host` is the source while a VM migrates, -1 once it has left.
    """

    time_s: float
    step: int  # 0 at the initial placement, then 1, 2, ... at each periodic update
    interval_s: float
    datacenter: Datacenter
    vm_mips: FloatArray  # per PE
    vm_pes: IntArray
    vm_ram_mb: FloatArray
    vm_bw_mbit_s: FloatArray
    vm_host: IntArray
    vm_utilization: FloatArray  # CPU utilisation now, fraction of the VM's MIPS
    vm_requested_mips: FloatArray  # total request now (0 once removed); the full MIPS while instantiating
    vm_history: FloatArray  # (n_vms, H): utilisation at the last H periodic updates, newest first, zero-padded
    history_len: int
    vm_migrating: BoolArray
    in_flight: tuple[InFlightMigration, ...]
    residency_host: IntArray
    residency_vm: IntArray
    residency_kind: IntArray  # allocation.NORMAL / OUT / IN
    residency_allocated_mips: FloatArray
    host_used_mips: FloatArray  # what power follows (CloudSim's utilizationMips)
    host_requested_mips: FloatArray
    instantiating: bool
    migration_time: MigrationTimeModel
    # per host, the seconds it has been active with used < requested MIPS so far (SLATAH's numerator, measured)
    host_violation_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    # per VM, the MIPS-seconds it has lost while migrating out so far (PDM's numerator, measured)
    vm_migration_loss_mips_s: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_hosts(self) -> int:
        return self.datacenter.n_hosts

    @property
    def n_vms(self) -> int:
        return int(self.vm_mips.shape[0])

    @property
    def vm_total_mips(self) -> FloatArray:
        total: FloatArray = self.vm_mips * self.vm_pes
        return total

    @property
    def host_utilization(self) -> FloatArray:
        """Used / total MIPS, with CloudSim's rounding of (1, 1.01) down to 1."""
        u = self.host_used_mips / self.datacenter.total_mips
        clamped: FloatArray = np.where((u > 1) & (u < 1.01), 1.0, u)
        return clamped

    @property
    def active_vms(self) -> IntArray:
        active: IntArray = np.flatnonzero(self.vm_host >= 0)
        return active

    def host_vms(self, host: int) -> IntArray:
        """VMs with a copy on `host`, in vmList order (including VMs migrating in)."""
        vms: IntArray = self.residency_vm[self.residency_host == host]
        return vms

    def migrating_in(self, host: int) -> IntArray:
        mask = (self.residency_host == host) & (self.residency_kind == IN)
        vms: IntArray = self.residency_vm[mask]
        return vms

    def migrating_out(self, host: int) -> IntArray:
        mask = (self.residency_host == host) & (self.residency_kind == OUT)
        vms: IntArray = self.residency_vm[mask]
        return vms


class Policy(Protocol):
    """A consolidation policy: the one thing a cost-aware advisor policy has to implement."""

    @property
    def name(self) -> str: ...

    def initial_placement(self, snapshot: Snapshot) -> IntArray:
        """A host index for every VM (the snapshot has `instantiating` set and no VM placed); -1 where no host can
        take the VM (the hosts are too few for the trace)."""
        ...

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        """Migrations to start now, in order."""
        ...
