"""The snapshot with one change made for one question: a VM it does not hold yet (one PlaceVm is asked about)
added unplaced, so that the filters and the weigher judge it exactly as a VM that moves; VMs pinned (a plan made
again without the moves it dropped).

Adding a VM copies the VM columns and the group lists once (O(VMs + group members), array operations), far less
than building the snapshot again from the domain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from advisor.domain.model import Vm
from advisor.planning.engine.relations import Csr, Groups, HostRules, Networks
from advisor.planning.engine.snapshot import ANY_MODEL, NO_HOST, ClusterArrays


def _append(values: np.ndarray, value: object) -> np.ndarray:
    return np.concatenate([values, np.array([value], dtype=values.dtype)])


def _groups_with(groups: Groups, vm: int, vm_obj: Vm) -> Groups:
    """`groups` with VM `vm` in its affinity groups (soft, together) and anti-affinity groups (hard, apart), as
    `relations.group_rules` reads them from the domain."""
    keys = {(name, bool(t), bool(m)): g for g, (name, t, m) in enumerate(zip(groups.names, groups.together,
                                                                             groups.must, strict=True))}
    names, together, must = list(groups.names), list(groups.together.tolist()), list(groups.must.tolist())
    joined: list[int] = []
    wanted = [(n, True, False) for n in sorted(vm_obj.affinity_groups)]
    wanted += [(n, False, True) for n in sorted(vm_obj.anti_affinity_groups)]
    for key in wanted:
        if key not in keys:
            keys[key] = len(names)
            names.append(key[0])
            together.append(key[1])
            must.append(key[2])
        joined.append(keys[key])
    # The VM is the last one: the rows kept as they are, it goes at the end of each group it joins (old groups) or
    # alone in a new one, and its own row of groups is appended (O(members) copies, no sort).
    old, members = len(groups.names), groups.members
    into_old = np.array(sorted(g for g in joined if g < old), dtype=np.int64)
    ptr = members.ptr + np.searchsorted(into_old, np.arange(old + 1), side="left")
    ptr = np.concatenate([ptr, ptr[-1] + np.arange(1, len(names) - old + 1)])
    values = np.insert(members.values, members.ptr[into_old + 1], vm)
    values = np.concatenate([values, np.full(len(names) - old, vm, dtype=np.int64)])
    of_vm = Csr(np.append(groups.of_vm.ptr, groups.of_vm.ptr[-1] + len(joined)),
                np.concatenate([groups.of_vm.values, np.array(joined, dtype=np.int64)]))
    return Groups(tuple(names), np.array(together, dtype=bool), np.array(must, dtype=bool), Csr(ptr, values), of_vm)


def with_new_vm(cluster: ClusterArrays, vm: Vm) -> tuple[ClusterArrays, int]:
    """The cluster with `vm` added unplaced, and its index. Its CPU use is unknown: taken as fully busy."""
    index = cluster.n_vms
    models = cluster.cpu_models
    if vm.cpu_model and vm.cpu_model not in models:
        models = (*models, vm.cpu_model)  # no host has it: the CPU model filter rejects every one
    model = models.index(vm.cpu_model) if vm.cpu_model else ANY_MODEL
    loads = replace(cluster.loads, vm_host=_append(cluster.loads.vm_host, NO_HOST))  # the hosts' loads unchanged
    rules = cluster.host_rules
    host_rules = HostRules(rules.names, rules.on, rules.must, rules.hosts,
                           Csr(_append(rules.of_vm.ptr, rules.of_vm.ptr[-1]), rules.of_vm.values))
    grown = replace(
        cluster, vm_ids=(*cluster.vm_ids, vm.id), vm_vcpus=_append(cluster.vm_vcpus, vm.vcpus),
        vm_memory_mib=_append(cluster.vm_memory_mib, vm.memory_mib),
        vm_memory_used_mib=_append(cluster.vm_memory_used_mib, vm.memory_mib),
        vm_cpu=_append(cluster.vm_cpu, float(vm.vcpus)), vm_cpu_model=_append(cluster.vm_cpu_model, model),
        vm_dirty_rate_mib_s=_append(cluster.vm_dirty_rate_mib_s, np.nan),
        vm_postcopy=_append(cluster.vm_postcopy, vm.postcopy_allowed), vm_movable=_append(cluster.vm_movable, True),
        vm_local_disk_mib=_append(cluster.vm_local_disk_mib, vm.local_disk_size_mib),
        vm_local_disk_used_mib=_append(cluster.vm_local_disk_used_mib, 0.0),  # placed, not moved: nothing copied
        vm_disk_write_rate_mib_s=_append(cluster.vm_disk_write_rate_mib_s, np.nan),
        vm_disk_write_pushed_mib_s=_append(cluster.vm_disk_write_pushed_mib_s, np.nan),
        vm_resident_memory_mib=_append(cluster.vm_resident_memory_mib, np.nan),
        vm_cold=_append(cluster.vm_cold, False),
        groups=_groups_with(cluster.groups, index, vm), host_rules=host_rules, loads=loads.frozen(),
        cpu_models=models, networks=_networks_with(cluster.networks, index, vm), _index={},
    )
    return grown, index


def _networks_with(networks: Networks, vm: int, vm_obj: Vm) -> Networks:
    """`networks` with VM `vm` using its networks; one no host offers gets an empty row (every host lacks it)."""
    if not vm_obj.networks and not networks.names:
        return networks
    names = list(networks.names)
    index = {name: k for k, name in enumerate(names)}
    for name in sorted(vm_obj.networks - index.keys()):
        index[name] = len(names)
        names.append(name)
    hosts = Csr(np.concatenate([networks.hosts.ptr, np.full(len(names) - len(networks.names),
                                                             networks.hosts.ptr[-1], dtype=np.int64)]),
                networks.hosts.values)
    used = np.array(sorted(index[n] for n in vm_obj.networks), dtype=np.int64)
    ptr = networks.of_vm.ptr if len(networks.of_vm.ptr) == vm + 1 else np.zeros(vm + 1, dtype=np.int64)
    of_vm = Csr(np.append(ptr, ptr[-1] + len(used)), np.concatenate([networks.of_vm.values, used]))
    return Networks(tuple(names), hosts, of_vm)


def with_pinned(cluster: ClusterArrays, vms: Sequence[int]) -> ClusterArrays:
    """The cluster with `vms` (indexes) no longer movable."""
    movable = cluster.vm_movable.copy()
    movable[list(vms)] = False
    return replace(cluster, vm_movable=movable, _index=cluster._index)
