"""The relations of a cluster snapshot as CSR lists: VM-VM groups, VM-host rules and networks, both ways.

A filter finds a VM's groups and a group's members in time proportional to their size, never to the cluster's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from advisor.domain.model import Host, Vm

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class VmGroupRule:
    """VM-VM rule: the VMs run together (affinity) or apart (anti-affinity); `must` makes it a hard filter,
    otherwise it is a soft preference that the weigher scores."""

    name: str
    vm_ids: frozenset[str]
    together: bool
    must: bool


@dataclass(frozen=True)
class VmHostRule:
    """VM-host rule: the VMs run on (`on`) or off the hosts; `must` is hard, otherwise soft."""

    name: str
    vm_ids: frozenset[str]
    host_ids: frozenset[str]
    on: bool
    must: bool


Rule = VmGroupRule | VmHostRule


@dataclass(frozen=True)
class Csr:
    """Rows of different lengths: row i is `values[ptr[i]:ptr[i + 1]]`."""

    ptr: IntArray
    values: IntArray

    def row(self, i: int) -> IntArray:
        row: IntArray = self.values[self.ptr[i] : self.ptr[i + 1]]
        return row

    def has_row(self, i: int) -> bool:
        return bool(self.ptr[i + 1] > self.ptr[i])

    @staticmethod
    def from_pairs(n_rows: int, rows: IntArray, values: IntArray) -> Csr:
        order = np.argsort(rows, kind="stable")
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
        return Csr(ptr, np.asarray(values, dtype=np.int64)[order])

    @staticmethod
    def empty(n_rows: int) -> Csr:
        return Csr(np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Groups:
    """VM-VM rules: per group whether together or apart and whether hard; members both ways."""

    names: tuple[str, ...]
    together: BoolArray
    must: BoolArray
    members: Csr  # group -> VMs
    of_vm: Csr  # VM -> groups

    @staticmethod
    def none(n_vms: int) -> Groups:
        return Groups((), np.zeros(0, bool), np.zeros(0, bool), Csr.empty(0), Csr.empty(n_vms))


@dataclass(frozen=True)
class HostRules:
    """VM-host rules: per rule whether on or off its hosts and whether hard; hosts per rule, rules per VM."""

    names: tuple[str, ...]
    on: BoolArray
    must: BoolArray
    hosts: Csr  # rule -> hosts
    of_vm: Csr  # VM -> rules

    @staticmethod
    def none(n_vms: int) -> HostRules:
        return HostRules((), np.zeros(0, bool), np.zeros(0, bool), Csr.empty(0), Csr.empty(n_vms))


@dataclass(frozen=True)
class Networks:
    """Networks by name (bridges, VLANs, SR-IOV pools): the hosts offering each, and the networks each VM uses."""

    names: tuple[str, ...]
    hosts: Csr  # network -> hosts offering it
    of_vm: Csr  # VM -> networks it uses

    @staticmethod
    def none(n_vms: int) -> Networks:
        return Networks((), Csr.empty(0), Csr.empty(n_vms))


def group_rules(vms: Sequence[Vm], rules: Iterable[Rule], vm_index: Mapping[str, int]) -> Groups:
    """VM-VM groups: the domain's affinity groups (soft: prefer one host) and anti-affinity groups (hard: distinct
    hosts), plus explicit rules; a name used with the same kind and strength is one group."""
    keys: dict[tuple[str, bool, bool], int] = {}
    pairs: list[tuple[int, int]] = []

    def add(name: str, together: bool, must: bool, members: Iterable[int]) -> None:
        g = keys.setdefault((name, together, must), len(keys))
        pairs.extend((g, v) for v in members)

    for k, vm in enumerate(vms):
        for name in sorted(vm.affinity_groups):
            add(name, True, False, (k,))
        for name in sorted(vm.anti_affinity_groups):
            add(name, False, True, (k,))
    for rule in rules:
        if isinstance(rule, VmGroupRule):
            add(rule.name, rule.together, rule.must, sorted(vm_index[v] for v in rule.vm_ids if v in vm_index))
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    members = np.array([v for _, v in pairs], dtype=np.int64)
    ordered = sorted(keys, key=keys.__getitem__)
    return Groups(
        tuple(name for name, _, _ in ordered), np.array([t for _, t, _ in ordered], dtype=bool),
        np.array([m for _, _, m in ordered], dtype=bool), Csr.from_pairs(len(keys), groups, members),
        Csr.from_pairs(len(vms), members, groups),
    )


def networks_of(hosts: Sequence[Host], vms: Sequence[Vm]) -> Networks:
    """Which hosts offer each network, and which networks each VM uses; a network no host offers is kept (its
    row is empty: the network filter rejects every host for the VMs using it)."""
    names = sorted({n for h in hosts for n in h.networks} | {n for v in vms for n in v.networks})
    index = {name: k for k, name in enumerate(names)}
    offered = [(index[n], k) for k, h in enumerate(hosts) for n in h.networks]  # hosts in row order
    used = [(k, index[n]) for k, v in enumerate(vms) for n in sorted(v.networks)]
    return Networks(
        tuple(names),
        Csr.from_pairs(len(names), np.array([n for n, _ in offered], np.int64),
                       np.array([h for _, h in offered], np.int64)),
        Csr.from_pairs(len(vms), np.array([v for v, _ in used], np.int64), np.array([n for _, n in used], np.int64)),
    )


def host_rules_of(rules: Iterable[Rule], n_vms: int, vm_index: Mapping[str, int],
                  host_index: Mapping[str, int]) -> HostRules:
    chosen = [r for r in rules if isinstance(r, VmHostRule)]
    rule_rows = [(k, host_index[h]) for k, r in enumerate(chosen) for h in sorted(r.host_ids) if h in host_index]
    vm_rows = [(vm_index[v], k) for k, r in enumerate(chosen) for v in sorted(r.vm_ids) if v in vm_index]
    return HostRules(
        tuple(r.name for r in chosen), np.array([r.on for r in chosen], dtype=bool),
        np.array([r.must for r in chosen], dtype=bool),
        Csr.from_pairs(len(chosen), np.array([k for k, _ in rule_rows], np.int64),
                       np.array([h for _, h in rule_rows], np.int64)),
        Csr.from_pairs(n_vms, np.array([v for v, _ in vm_rows], np.int64),
                       np.array([k for _, k in vm_rows], np.int64)),
    )
