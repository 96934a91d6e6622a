"""The inventory held in memory, with the indexes placement needs, and its all-or-nothing changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Host, Vm
from advisor.domain.text import counted


@dataclass(frozen=True)
class InventoryChange:
    hosts: tuple[Host, ...] = ()
    vms: tuple[Vm, ...] = ()
    removed_host_ids: tuple[str, ...] = ()
    removed_vm_ids: tuple[str, ...] = ()


def _first_duplicate(ids: Iterable[str]) -> tuple[int, int] | None:
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in seen:
            return seen[ident], i
        seen[ident] = i
    return None


class Cluster:
    """Hosts and VMs with per-host allocation and group indexes. Not thread-safe: its owner serialises access."""

    def __init__(self, hosts: Iterable[Host] = (), vms: Iterable[Vm] = ()) -> None:
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, Vm] = {}
        self._vms_by_host: dict[str, set[str]] = defaultdict(set)
        self._allocated_memory_mib: dict[str, int] = defaultdict(int)
        self._allocated_vcpus: dict[str, int] = defaultdict(int)
        self._anti_affinity: dict[str, set[str]] = defaultdict(set)
        self._affinity: dict[str, set[str]] = defaultdict(set)
        self._offered_by: dict[str, set[str]] = defaultdict(set)  # network -> hosts offering it
        self.apply(InventoryChange(hosts=tuple(hosts), vms=tuple(vms)))

    # -- reading -------------------------------------------------------------------------------------------

    def vm_ids_on(self, host_id: str) -> frozenset[str]:
        return frozenset(self._vms_by_host.get(host_id, ()))

    def allocated(self, host_id: str) -> tuple[int, int]:
        """(memory MiB, vCPUs) given to the VMs on a host."""
        return self._allocated_memory_mib.get(host_id, 0), self._allocated_vcpus.get(host_id, 0)

    def anti_affinity_conflicts(self, vm: Vm) -> dict[str, str]:
        """Hosts the VM must avoid, each with the reason: another member of one of its anti-affinity groups."""
        conflicts: dict[str, str] = {}
        for group in sorted(vm.anti_affinity_groups):
            for other_id in sorted(self._anti_affinity.get(group, ())):
                if other_id != vm.id:
                    other = self.vms[other_id]
                    conflicts.setdefault(other.host_id, f"anti-affinity group {group!r}: VM {other_id} runs there")
        return conflicts

    def affinity_partners(self, vm: Vm) -> dict[str, str]:
        """Hosts running another member of one of the VM's affinity groups, each with the group's name."""
        partners: dict[str, str] = {}
        for group in sorted(vm.affinity_groups):
            for other_id in sorted(self._affinity.get(group, ())):
                if other_id != vm.id:
                    partners.setdefault(self.vms[other_id].host_id, group)
        return partners

    def unknown_networks(self, vm: Vm) -> list[str]:
        """The networks `vm` uses that no host of the inventory offers, sorted."""
        return sorted(n for n in vm.networks if not self._offered_by.get(n))

    # -- changing ------------------------------------------------------------------------------------------

    def check(self, change: InventoryChange) -> None:
        """Raise InvalidArgument or NotFound, naming the field, if the change cannot be applied whole."""
        for name, ids in (
            ("hosts", [h.id for h in change.hosts]),
            ("vms", [v.id for v in change.vms]),
            ("removed_host_ids", list(change.removed_host_ids)),
            ("removed_vm_ids", list(change.removed_vm_ids)),
        ):
            dup = _first_duplicate(ids)
            if dup:
                suffix = ".id" if name in ("hosts", "vms") else ""
                raise InvalidArgument(f"{name}[{dup[1]}]{suffix}", f"duplicate of {name}[{dup[0]}] ({ids[dup[1]]!r})")
        pushed_hosts = {h.id for h in change.hosts}
        pushed_vms = {v.id: v for v in change.vms}
        removed_hosts = set(change.removed_host_ids)
        removed_vms = set(change.removed_vm_ids)
        for i, host_id in enumerate(change.removed_host_ids):
            if host_id in pushed_hosts:
                raise InvalidArgument(f"removed_host_ids[{i}]", f"host {host_id!r} is both pushed and removed")
            if host_id not in self.hosts:
                raise NotFound(f"removed_host_ids[{i}]", "host", host_id)
        for i, vm_id in enumerate(change.removed_vm_ids):
            if vm_id in pushed_vms:
                raise InvalidArgument(f"removed_vm_ids[{i}]", f"VM {vm_id!r} is both pushed and removed")
            if vm_id not in self.vms:
                raise NotFound(f"removed_vm_ids[{i}]", "VM", vm_id)
        hosts_after = {**self.hosts, **{h.id: h for h in change.hosts}}
        for i, vm in enumerate(change.vms):
            if vm.host_id in removed_hosts or vm.host_id not in hosts_after:
                raise NotFound(f"vms[{i}].host_id", "host", vm.host_id)
            host = hosts_after[vm.host_id]
            if vm.memory_mib > host.memory_mib:
                raise InvalidArgument(f"vms[{i}].memory_mib", f"{vm.memory_mib} MiB is more than its host "
                                                              f"{host.id!r} has ({host.memory_mib} MiB)")
        self._check_networks(change, removed_hosts)
        for i, host_id in enumerate(change.removed_host_ids):
            staying = sorted(
                vm_id
                for vm_id in self._vms_by_host.get(host_id, ())
                if vm_id not in removed_vms and (vm_id not in pushed_vms or pushed_vms[vm_id].host_id == host_id)
            )
            if staying:
                raise InvalidArgument(
                    f"removed_host_ids[{i}]",
                    f"host {host_id!r} still has {counted(len(staying), 'VM')}, e.g. {staying[0]!r}; "
                    "remove or move them in the same push",
                )

    def _check_networks(self, change: InventoryChange, removed_hosts: set[str]) -> None:
        """Every network a pushed VM uses is offered by some host once the change is applied: a name no host
        knows is a typo or a host not pushed yet, and the VM could never move."""
        if not any(vm.networks for vm in change.vms):
            return
        gone = removed_hosts | {h.id for h in change.hosts}  # a pushed host replaces what it offered
        offered = {n for h in change.hosts for n in h.networks}
        for i, vm in enumerate(change.vms):
            for name in sorted(vm.networks):
                if name in offered or self._offered_by.get(name, set()) - gone:
                    continue
                raise InvalidArgument(f"vms[{i}].networks", f"unknown network {name!r}: no host of the inventory "
                                                            "offers it (push the hosts with their networks first)")

    def apply(self, change: InventoryChange) -> None:
        self.check(change)
        for vm_id in change.removed_vm_ids:
            self._unindex(self.vms.pop(vm_id))
        for vm in change.vms:
            old = self.vms.get(vm.id)
            if old is not None:
                self._unindex(old)
            self.vms[vm.id] = vm
            self._index(vm)
        for host_id in (*(h.id for h in change.hosts), *change.removed_host_ids):
            for name in self.hosts[host_id].networks if host_id in self.hosts else ():
                self._offered_by[name].discard(host_id)
        for host_id in change.removed_host_ids:
            del self.hosts[host_id]
            self._vms_by_host.pop(host_id, None)
            self._allocated_memory_mib.pop(host_id, None)
            self._allocated_vcpus.pop(host_id, None)
        for host in change.hosts:
            self.hosts[host.id] = host
            for name in host.networks:
                self._offered_by[name].add(host.id)

    def _index(self, vm: Vm) -> None:
        self._vms_by_host[vm.host_id].add(vm.id)
        self._allocated_memory_mib[vm.host_id] += vm.memory_mib
        self._allocated_vcpus[vm.host_id] += vm.vcpus
        for group in vm.anti_affinity_groups:
            self._anti_affinity[group].add(vm.id)
        for group in vm.affinity_groups:
            self._affinity[group].add(vm.id)

    def _unindex(self, vm: Vm) -> None:
        self._vms_by_host[vm.host_id].discard(vm.id)
        self._allocated_memory_mib[vm.host_id] -= vm.memory_mib
        self._allocated_vcpus[vm.host_id] -= vm.vcpus
        for group in vm.anti_affinity_groups:
            self._anti_affinity[group].discard(vm.id)
        for group in vm.affinity_groups:
            self._affinity[group].discard(vm.id)
