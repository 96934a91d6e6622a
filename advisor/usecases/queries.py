"""Listings of hosts and VMs with their allocation and latest samples, paged by id."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.domain import validation
from advisor.domain.errors import NotFound
from advisor.domain.model import Host, Vm
from advisor.features.samples import RecentSamples
from advisor.usecases.inventory import Inventory
from advisor.usecases.paging import decode_token, encode_token, page_size


@dataclass(frozen=True)
class HostView:
    host: Host
    vm_count: int
    allocated_memory_mib: int
    allocated_vcpus: int
    cpu_utilization: float | None
    last_sample_s: float | None


@dataclass(frozen=True)
class VmView:
    vm: Vm
    cpu_utilization: float | None
    dirty_rate_mib_s: float | None
    last_sample_s: float | None


class Queries:
    def __init__(self, inventory: Inventory, samples: RecentSamples) -> None:
        self._inventory = inventory
        self._samples = samples

    def list_hosts(self, size: int = 0, token: str = "") -> tuple[list[HostView], str]:
        size = page_size(size, "page_size")
        after = decode_token("hosts", token, "page_token") if token else ""
        with self._inventory.reading() as cluster:
            ids = sorted(i for i in cluster.hosts if i > after)[: size + 1]
            views = []
            for host_id in ids[:size]:
                memory, vcpus = cluster.allocated(host_id)
                cpu = self._samples.host_latest(host_id, "cpu_utilization")
                views.append(HostView(cluster.hosts[host_id], len(cluster.vm_ids_on(host_id)), memory, vcpus,
                                      None if cpu is None else cpu.value, self._samples.host_last_time(host_id)))
        return views, (encode_token("hosts", ids[size - 1]) if len(ids) > size else "")

    def list_vms(self, host_id: str = "", size: int = 0, token: str = "") -> tuple[list[VmView], str]:
        size = page_size(size, "page_size")
        after = decode_token(f"vms:{host_id}", token, "page_token") if token else ""
        if host_id:
            validation.check_id(host_id, "host_id")
        with self._inventory.reading() as cluster:
            if host_id and host_id not in cluster.hosts:
                raise NotFound("host_id", "host", host_id)
            pool = cluster.vm_ids_on(host_id) if host_id else cluster.vms.keys()
            ids = sorted(i for i in pool if i > after)[: size + 1]
            views = []
            for vm_id in ids[:size]:
                cpu = self._samples.vm_latest(vm_id, "cpu_utilization")
                dirty = self._samples.vm_latest(vm_id, "dirty_rate_mib_s")
                times, _ = self._samples.vm_window(vm_id)
                views.append(VmView(cluster.vms[vm_id], None if cpu is None else cpu.value,
                                    None if dirty is None else dirty.value,
                                    float(times[-1]) if len(times) else None))
        return views, (encode_token(f"vms:{host_id}", ids[size - 1]) if len(ids) > size else "")
