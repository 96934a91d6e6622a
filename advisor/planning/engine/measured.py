"""The latest measurements of a cluster's hosts and VMs, as the engine's arrays are built from them: by row
(`Measured`), or of one host or VM (`HostMeasurement`, `VmMeasurement`) as an update brings them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from advisor.domain.model import Host, Vm
from advisor.planning.engine.snapshot import FloatArray


@dataclass(frozen=True)
class Measured:
    """The latest measurements by row, NaN where there is none: utilisation of a host's cores and of a VM's vCPUs
    (ratios), a VM's memory in use, its dirty rate, what it writes to its local disks (preferred to the
    inventory's write rate), what its QEMU process holds resident and what its longer page-sampling window saw
    rewritten (MiB); a host's runnable threads per CPU. A column `vm_X` is `VmMeasurement.X` by row, `host_X`
    `HostMeasurement.X`."""

    host_cpu: FloatArray
    vm_cpu: FloatArray
    vm_memory_used_mib: FloatArray
    vm_dirty_rate_mib_s: FloatArray
    vm_disk_write_rate_mib_s: FloatArray
    vm_resident_memory_mib: FloatArray
    vm_working_set_mib: FloatArray
    host_load_per_cpu: FloatArray

    @staticmethod
    def of(hosts: Sequence[Host], vms: Sequence[Vm], host_cpu: Mapping[str, float], vm_cpu: Mapping[str, float],
           vm_memory_used_mib: Mapping[str, float], vm_dirty_rate_mib_s: Mapping[str, float],
           vm_disk_write_rate_mib_s: Mapping[str, float] | None = None,
           vm_resident_memory_mib: Mapping[str, float] | None = None,
           vm_working_set_mib: Mapping[str, float] | None = None,
           host_load_per_cpu: Mapping[str, float] | None = None) -> Measured:
        def column(entities: Sequence[Host] | Sequence[Vm], values: Mapping[str, float] | None) -> FloatArray:
            return np.array([(values or {}).get(e.id, np.nan) for e in entities], dtype=np.float64)

        return Measured(column(hosts, host_cpu), column(vms, vm_cpu), column(vms, vm_memory_used_mib),
                        column(vms, vm_dirty_rate_mib_s), column(vms, vm_disk_write_rate_mib_s),
                        column(vms, vm_resident_memory_mib), column(vms, vm_working_set_mib),
                        column(hosts, host_load_per_cpu))


@dataclass(frozen=True)
class VmMeasurement:
    """One VM's latest measurements, NaN where there is none."""

    cpu: float
    memory_used_mib: float
    dirty_rate_mib_s: float
    disk_write_rate_mib_s: float = float("nan")
    resident_memory_mib: float = float("nan")
    working_set_mib: float = float("nan")


@dataclass(frozen=True)
class HostMeasurement:
    """One host's latest measurements, NaN where there is none."""

    cpu: float
    load_per_cpu: float = float("nan")
