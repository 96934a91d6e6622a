"""The cluster as numpy arrays, the one input of the decision engine.

Hosts and VMs are rows, addressed by position. What a move changes (where each VM runs, what each host carries)
lives in `Loads`, apart from the static description, so applying a move copies only those arrays (copy on write:
`with_moves` shares every static array with the original). Rules and networks are CSR lists in both directions
(`relations.py`).

Units follow the domain: memory in MiB, bandwidth in MiB/s, power in W, CPU in cores (a VM's measured use is
cores busy, i.e. its vCPUs times its utilisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advisor.planning.engine.relations import Groups, HostRules, Networks

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

NO_HOST = -1
ANY_MODEL = -1


@dataclass(frozen=True)
class Loads:
    """What moves change. Arrays of a snapshot are read-only; a plan works on its own `copy()`."""

    vm_host: IntArray
    host_vcpus: FloatArray
    host_memory_mib: FloatArray
    host_cpu: FloatArray  # cores busy: the host's own base plus its VMs' measured use
    host_vms: IntArray
    # Local disk space the moves so far copied onto each host (0 in a snapshot: its free space is as reported).
    # A source gets nothing back: libvirt leaves the source's image in place after a move.
    host_disk_in_mib: FloatArray

    def copy(self) -> Loads:
        return Loads(self.vm_host.copy(), self.host_vcpus.copy(), self.host_memory_mib.copy(), self.host_cpu.copy(),
                     self.host_vms.copy(), self.host_disk_in_mib.copy())

    def frozen(self) -> Loads:
        for array in (self.vm_host, self.host_vcpus, self.host_memory_mib, self.host_cpu, self.host_vms,
                      self.host_disk_in_mib):
            array.flags.writeable = False
        return self

    def move(self, cluster: ClusterArrays, vm: int, target: int) -> None:
        """In place: only on a private copy (a plan's working state)."""
        source = int(self.vm_host[vm])
        vcpus, memory, cpu = cluster.vm_vcpus[vm], cluster.vm_memory_mib[vm], cluster.vm_cpu[vm]
        if source >= 0:
            self.host_vcpus[source] -= vcpus
            self.host_memory_mib[source] -= memory
            self.host_cpu[source] -= cpu
            self.host_vms[source] -= 1
        self.host_vcpus[target] += vcpus
        self.host_memory_mib[target] += memory
        self.host_cpu[target] += cpu
        self.host_vms[target] += 1
        self.host_disk_in_mib[target] += cluster.vm_local_disk_mib[vm]
        self.vm_host[vm] = target


def host_sums(n_hosts: int, vm_host: IntArray, values: FloatArray) -> FloatArray:
    placed = vm_host >= 0
    sums: FloatArray = np.bincount(vm_host[placed], weights=values[placed], minlength=n_hosts).astype(np.float64)
    return sums


@dataclass(frozen=True)
class ClusterArrays:
    """Hosts and VMs as arrays. Build it with `from_domain` (from the domain values) or `build` (from arrays)."""

    host_ids: tuple[str, ...]
    host_cores: FloatArray
    host_memory_mib: FloatArray
    host_cpu_model: IntArray  # index into cpu_models, ANY_MODEL when unknown
    host_disabled: BoolArray  # in maintenance or disabled: never a target
    host_bandwidth_mib_s: FloatArray
    host_idle_w: FloatArray
    host_max_w: FloatArray
    host_base_cpu: FloatArray  # cores busy beyond the VMs' own (hypervisor, unknown guests)
    host_cluster: IntArray  # index into clusters: a VM moves only between hosts of one cluster
    host_migration_tls: BoolArray  # the host offers TLS for migration (Host.migration_tls)
    host_disk_free_mib: FloatArray  # free space for local disks (Host.local_disk_free_mib), NaN when unknown
    host_load_per_cpu: FloatArray  # runnable threads per CPU (1-minute load average / CPUs), NaN when not measured
    vm_ids: tuple[str, ...]
    vm_vcpus: FloatArray
    vm_memory_mib: FloatArray
    vm_memory_used_mib: FloatArray  # what a live migration copies
    vm_cpu: FloatArray  # cores busy
    vm_cpu_model: IntArray  # ANY_MODEL: any host will do
    vm_dirty_rate_mib_s: FloatArray  # NaN when unknown (costed as pessimistically as the features layer does)
    vm_working_set_mib: FloatArray  # MiB the longer page-sampling window saw rewritten, NaN when not measured
    # a busy guest's reading at page sampling's floor (advisor.physics.measurement.at_floor_dirty_rate)
    vm_dirty_at_floor: BoolArray
    vm_postcopy: BoolArray
    vm_movable: BoolArray  # False for a VM migrating now or pinned by its owner
    vm_local_disk_mib: FloatArray  # size of its disks that are not shared: what a move copies to the target
    vm_local_disk_used_mib: FloatArray  # the space those disks' blocks take: what the copy sends
    vm_disk_write_rate_mib_s: FloatArray  # what the guest writes to them, NaN when not measured
    vm_disk_write_pushed_mib_s: FloatArray  # ... as the inventory says (the above is the newest sample's, if any)
    vm_resident_memory_mib: FloatArray  # what its QEMU process holds resident (libvirt's rss), NaN when not measured
    vm_cold: BoolArray  # its label asks for cold migration (advisor.technique=cold)
    groups: Groups
    host_rules: HostRules
    loads: Loads
    cpu_models: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ("",)
    networks: Networks = field(default_factory=lambda: Networks.none(0))  # none used: no VM row needed
    # how far each VM's CPU (cores) may stray from vm_cpu over the next interval (one standard deviation of its
    # recent use, forecast.py); NaN for a VM, or None for all: unknown (balance then relieves its host by load)
    vm_cpu_spread: FloatArray | None = None
    _index: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_hosts(self) -> int:
        return len(self.host_ids)

    @property
    def n_vms(self) -> int:
        return len(self.vm_ids)

    @property
    def vm_host(self) -> IntArray:
        return self.loads.vm_host

    def cpu_ratio(self) -> FloatArray:
        ratio: FloatArray = self.loads.host_cpu / self.host_cores
        return ratio

    def host_index(self, host_id: str) -> int:
        if "hosts" not in self._index:
            self._index["hosts"] = {h: i for i, h in enumerate(self.host_ids)}
        index: int = self._index["hosts"][host_id]
        return index

    def vm_index(self, vm_id: str) -> int:
        if "vms" not in self._index:
            self._index["vms"] = {v: i for i, v in enumerate(self.vm_ids)}
        index: int = self._index["vms"][vm_id]
        return index

    def with_loads(self, loads: Loads) -> ClusterArrays:
        """The same cluster with other loads (shares every static array and the id indexes)."""
        return replace(self, loads=loads.frozen(), _index=self._index)

    def sharing_index(self, other: ClusterArrays) -> ClusterArrays:
        """This one, sharing the id indexes of `other`, which has the same hosts and VMs in the same rows (so that
        an update does not cost the next reader building them again)."""
        return replace(self, _index=other._index)

    def with_moves(self, vms: Sequence[int] | IntArray, targets: Sequence[int] | IntArray) -> ClusterArrays:
        """Copy on write: the cluster after moving each `vms[k]` to `targets[k]`, in order."""
        loads = self.loads.copy()
        for vm, target in zip(np.asarray(vms).tolist(), np.asarray(targets).tolist(), strict=True):
            loads.move(self, int(vm), int(target))
        return self.with_loads(loads)

    @staticmethod
    def build(
        *,
        host_ids: Sequence[str],
        host_cores: FloatArray,
        host_memory_mib: FloatArray,
        vm_ids: Sequence[str],
        vm_host: IntArray,
        vm_vcpus: FloatArray,
        vm_memory_mib: FloatArray,
        vm_cpu: FloatArray,
        host_cpu_model: IntArray | None = None,
        host_disabled: BoolArray | None = None,
        host_bandwidth_mib_s: FloatArray | None = None,
        host_idle_w: FloatArray | None = None,
        host_max_w: FloatArray | None = None,
        host_base_cpu: FloatArray | None = None,
        host_cluster: IntArray | None = None,
        host_migration_tls: BoolArray | None = None,
        host_disk_free_mib: FloatArray | None = None,
        host_load_per_cpu: FloatArray | None = None,
        vm_memory_used_mib: FloatArray | None = None,
        vm_cpu_model: IntArray | None = None,
        vm_dirty_rate_mib_s: FloatArray | None = None,
        vm_working_set_mib: FloatArray | None = None,
        vm_dirty_at_floor: BoolArray | None = None,
        vm_postcopy: BoolArray | None = None,
        vm_movable: BoolArray | None = None,
        vm_local_disk_mib: FloatArray | None = None,
        vm_local_disk_used_mib: FloatArray | None = None,
        vm_disk_write_rate_mib_s: FloatArray | None = None,
        vm_disk_write_pushed_mib_s: FloatArray | None = None,
        vm_resident_memory_mib: FloatArray | None = None,
        vm_cold: BoolArray | None = None,
        groups: Groups | None = None,
        host_rules: HostRules | None = None,
        cpu_models: Sequence[str] = (),
        clusters: Sequence[str] = ("",),
        networks: Networks | None = None,
        vm_cpu_spread: FloatArray | None = None,
    ) -> ClusterArrays:
        """From arrays (e.g. a simulator's); omitted arrays take neutral defaults. Loads are summed here."""
        nh, nv = len(host_ids), len(vm_ids)

        def f(a: Any, n: int, default: float) -> FloatArray:
            out: FloatArray = np.full(n, default, dtype=np.float64) if a is None else np.asarray(a, np.float64)
            return out

        def b(a: Any, n: int, default: bool) -> BoolArray:
            out: BoolArray = np.full(n, default, dtype=bool) if a is None else np.asarray(a, bool)
            return out

        def i(a: Any, n: int, default: int) -> IntArray:
            out: IntArray = np.full(n, default, dtype=np.int64) if a is None else np.asarray(a, np.int64)
            return out

        where = np.asarray(vm_host, dtype=np.int64)
        cores, memory, cpu = f(host_cores, nh, 0), f(vm_memory_mib, nv, 0), f(vm_cpu, nv, 0)
        vcpus, base = f(vm_vcpus, nv, 0), f(host_base_cpu, nh, 0.0)
        if (cores <= 0).any():
            raise ValueError("every host needs a positive number of cores")
        if where.shape != (nv,) or ((where < NO_HOST) | (where >= nh)).any():
            raise ValueError("vm_host must give a host index (or -1) per VM")
        loads = Loads(
            where.copy(), host_sums(nh, where, vcpus), host_sums(nh, where, memory), base + host_sums(nh, where, cpu),
            np.bincount(where[where >= 0], minlength=nh).astype(np.int64), np.zeros(nh, dtype=np.float64),
        )
        return ClusterArrays(
            host_ids=tuple(host_ids), host_cores=cores, host_memory_mib=f(host_memory_mib, nh, 0),
            host_cpu_model=i(host_cpu_model, nh, ANY_MODEL), host_disabled=b(host_disabled, nh, False),
            host_bandwidth_mib_s=f(host_bandwidth_mib_s, nh, 1000 / 8 * 1e6 / (1 << 20)),
            host_idle_w=f(host_idle_w, nh, 0), host_max_w=f(host_max_w, nh, 0), host_base_cpu=base,
            host_cluster=i(host_cluster, nh, 0), host_migration_tls=b(host_migration_tls, nh, False),
            host_disk_free_mib=f(host_disk_free_mib, nh, np.nan), host_load_per_cpu=f(host_load_per_cpu, nh, np.nan),
            vm_ids=tuple(vm_ids), vm_vcpus=vcpus, vm_memory_mib=memory,
            vm_memory_used_mib=memory if vm_memory_used_mib is None else f(vm_memory_used_mib, nv, 0),
            vm_cpu=cpu, vm_cpu_model=i(vm_cpu_model, nv, ANY_MODEL),
            vm_dirty_rate_mib_s=f(vm_dirty_rate_mib_s, nv, np.nan), vm_postcopy=b(vm_postcopy, nv, True),
            vm_working_set_mib=f(vm_working_set_mib, nv, np.nan), vm_dirty_at_floor=b(vm_dirty_at_floor, nv, False),
            vm_movable=b(vm_movable, nv, True), vm_local_disk_mib=f(vm_local_disk_mib, nv, 0.0),
            vm_local_disk_used_mib=f(vm_local_disk_used_mib, nv, 0.0),
            vm_disk_write_rate_mib_s=f(vm_disk_write_rate_mib_s, nv, np.nan), vm_cold=b(vm_cold, nv, False),
            vm_disk_write_pushed_mib_s=f(vm_disk_write_pushed_mib_s, nv, np.nan),
            vm_resident_memory_mib=f(vm_resident_memory_mib, nv, np.nan),
            groups=groups or Groups.none(nv),
            host_rules=host_rules or HostRules.none(nv), loads=loads.frozen(), cpu_models=tuple(cpu_models),
            clusters=tuple(clusters), networks=networks or Networks.none(nv),
            vm_cpu_spread=None if vm_cpu_spread is None else f(vm_cpu_spread, nv, 0.0),
        )
