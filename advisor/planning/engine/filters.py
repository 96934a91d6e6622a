"""Hard filters: which hosts may take a VM, every rejection attributed to a named filter.

One VM is assessed against many hosts at once: each filter is a boolean row over the hosts (True = rejected),
stacked into an (n_filters, n_hosts) matrix, so counting rejections by filter is a row sum and why one host was
refused is a column. Reason texts, with their numbers, are written only for the hosts someone will read about.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from advisor.domain.transport import TlsMode
from advisor.planning.engine.kernels import capacity_rows, first_rows
from advisor.planning.engine.snapshot import ANY_MODEL, NO_HOST, BoolArray, ClusterArrays, FloatArray, IntArray, Loads


class FilterKind(StrEnum):
    """The hard filters, in the order of the assessment's rows; the value is the name people read (and stored
    rejections keep)."""

    CURRENT = "current host"
    EXCLUDED = "excluded"
    DISABLED = "disabled"
    MODEL = "CPU model"
    VCPUS = "vCPUs"
    MEMORY = "memory"
    HEADROOM = "CPU headroom"
    ANTI = "anti-affinity"
    TOGETHER = "affinity"
    HOST_ON = "host affinity"
    HOST_OFF = "host anti-affinity"
    LEFT = "recently left"
    CLUSTER = "other cluster"
    TLS = "migration TLS"
    NETWORK = "network"
    DISK = "local disk space"

    @property
    def row(self) -> int:
        return _ROWS[self]


FILTERS: tuple[FilterKind, ...] = tuple(FilterKind)
_ROWS = {kind: row for row, kind in enumerate(FILTERS)}


class Rejection(NamedTuple):
    """One filter's rejections in an assessment: how many hosts, one of them, and why it was rejected."""

    kind: FilterKind
    hosts: int
    example_host: str
    reason: str


@dataclass(frozen=True)
class FilterPolicy:
    """Capacity knobs (the settings `placement_*`): allocation ratios as Nova's, CPU headroom as DRS's."""

    cpu_allocation_ratio: float = 4.0  # vCPUs allowed per core
    memory_allocation_ratio: float = 1.0  # none: a live migration copies all of it
    max_cpu_after: float = 0.85  # measured CPU load a target may reach with the VM
    # The setting `migration_tls`: `required` rules out a move to or from a host offering no TLS for migration.
    migration_tls: TlsMode = TlsMode.OFF


@dataclass(frozen=True)
class HostView:
    """The static columns of the hosts assessed (all when `all_hosts`), taken once: a plan assesses one pool of
    hosts for many VMs, and the weighers read the same columns."""

    index: IntArray
    all_hosts: bool
    cores: FloatArray
    memory_mib: FloatArray
    disabled: BoolArray
    cpu_model: IntArray
    cluster: IntArray
    idle_w: FloatArray
    span_w: FloatArray  # peak minus idle power
    one_cluster: bool  # every host of the snapshot in one cluster: the cluster filter rejects none

    @staticmethod
    def of(cluster: ClusterArrays, hosts: IntArray | None = None) -> HostView:
        every = hosts is None
        index: IntArray = np.arange(cluster.n_hosts, dtype=np.int64) if every else np.asarray(hosts, np.int64)

        def take(a: np.ndarray) -> np.ndarray:
            return a if every else a[index]

        idle = take(cluster.host_idle_w)
        return HostView(index, every, take(cluster.host_cores), take(cluster.host_memory_mib),
                        take(cluster.host_disabled), take(cluster.host_cpu_model), take(cluster.host_cluster), idle,
                        take(cluster.host_max_w) - idle, len(cluster.clusters) <= 1)


@dataclass(frozen=True)
class Assessment:
    """One VM against `hosts` (columns): which filters reject each host, and the loads after the move."""

    vm: int
    hosts: IntArray
    rejected: BoolArray  # (len(FILTERS), len(hosts))
    cpu_after: FloatArray
    memory_after: FloatArray
    all_hosts: bool
    view: HostView = field(compare=False, repr=False)
    # Hosts no filter rejects, and their columns (cheaper to index many columns by than the mask): every search
    # reads both, so they are set at once rather than cached on first use (which cost more than computing them).
    eligible: BoolArray = field(init=False, compare=False, repr=False)
    positions: IntArray = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        eligible = np.logical_not(np.logical_or.reduce(self.rejected, axis=0))
        object.__setattr__(self, "eligible", eligible)
        object.__setattr__(self, "positions", eligible.nonzero()[0])

    def eligible_hosts(self) -> IntArray:
        hosts: IntArray = self.hosts[self.eligible]
        return hosts

    @functools.cached_property
    def _first(self) -> tuple[IntArray, IntArray, IntArray]:
        """`first_filter`, the hosts each filter is first for, and the first column of each (kernels.first_rows)."""
        first: IntArray = np.full(self.hosts.shape[0], -1, dtype=np.int64)
        counts: IntArray = np.zeros(len(FILTERS), dtype=np.int64)
        example: IntArray = np.zeros(len(FILTERS), dtype=np.int64)
        first_rows(self.rejected, first, counts, example)
        return first, counts, example

    @property
    def first_filter(self) -> IntArray:
        """Per host, the row of the first filter (in FILTERS order) that rejects it, as a chain of filters drops it
        (-1: eligible): counted so, the rejections add up to the hosts rejected."""
        return self._first[0]

    def counts(self) -> IntArray:
        """Hosts rejected by each filter, each rejected host under the first filter that rejects it."""
        return self._first[1].copy()

    def first_rejected(self, row: int) -> int:
        """The host (index) of lowest position that filter `row` is the first to reject."""
        return int(self.hosts[int(self._first[2][row])])


def _marked(n: int, where: IntArray) -> BoolArray:
    mark = np.zeros(n, dtype=bool)
    mark[where] = True
    return mark


def _partners(cluster: ClusterArrays, loads: Loads, vm: int, group: int) -> IntArray:
    """Hosts running another VM of the group."""
    members = cluster.groups.members.row(group)
    where = loads.vm_host[members[members != vm]]
    hosts: IntArray = where[where >= 0]
    return hosts


def _only_current(rows: BoolArray, current: IntArray) -> None:
    """The VM's own host (at columns `current`) is no target: no other filter judges it (its load holds the VM
    already, which the capacity filters would count twice)."""
    if current.shape[0]:
        rows[:, current] = False
        rows[FilterKind.CURRENT.row, current] = True


def _what_it_brings(cluster: ClusterArrays, loads: Loads, vm: int, rows: BoolArray,
                    take: Callable[[np.ndarray], np.ndarray]) -> None:
    """The filters on what the VM brings along: the networks it uses, the local disks copied with it."""
    networks = cluster.networks
    if networks.names and networks.of_vm.has_row(vm):
        for k in networks.of_vm.row(vm).tolist():
            rows[FilterKind.NETWORK.row] |= ~take(_marked(cluster.n_hosts, networks.hosts.row(k)))
    disk = cluster.vm_local_disk_mib[vm]
    if disk > 0:  # a host whose free space is unknown (NaN) is not judged on it
        rows[FilterKind.DISK.row] = disk > take(cluster.host_disk_free_mib) - take(loads.host_disk_in_mib)


def assess(
    cluster: ClusterArrays,
    loads: Loads,
    vm: int,
    policy: FilterPolicy,
    *,
    hosts: IntArray | None = None,
    excluded: BoolArray | None = None,
    left: int = NO_HOST,
    view: HostView | None = None,
) -> Assessment:
    """Every filter for `vm` on `hosts` (all when None). `excluded` marks hosts the caller rules out (over all
    hosts); `left` is the host the VM left within its cooldown, which it may not return to. `view`, when given, is
    `HostView.of(cluster, hosts)` taken before."""
    n = cluster.n_hosts
    if view is None:
        view = HostView.of(cluster, hosts)
    index = view.index

    def take(a: np.ndarray) -> np.ndarray:
        return a if view.all_hosts else a[index]

    cores = view.cores
    rows = np.zeros((len(FILTERS), index.shape[0]), dtype=bool)
    current = (index == loads.vm_host[vm]).nonzero()[0]
    rows[FilterKind.CURRENT.row, current] = True
    if excluded is not None:
        rows[FilterKind.EXCLUDED.row] = take(excluded)
    rows[FilterKind.DISABLED.row] = view.disabled
    model = int(cluster.vm_cpu_model[vm])
    if model != ANY_MODEL:
        rows[FilterKind.MODEL.row] = view.cpu_model != model
    # vCPUs: take(host_vcpus) + the VM's > cores x ratio; memory_after: (take(host_memory) + the VM's) / memory;
    # cpu_after: (take(host_cpu) + the VM's) / cores; each filter rejects above its limit; in one compiled pass
    cpu_after, memory_after = np.empty(index.shape[0]), np.empty(index.shape[0])
    capacity_rows(rows, FilterKind.VCPUS.row, FilterKind.MEMORY.row, FilterKind.HEADROOM.row, index,
                  loads.host_vcpus, loads.host_memory_mib, loads.host_cpu, cores, view.memory_mib,
                  float(cluster.vm_vcpus[vm]), float(cluster.vm_memory_mib[vm]), float(cluster.vm_cpu[vm]),
                  float(policy.cpu_allocation_ratio), float(policy.memory_allocation_ratio),
                  float(policy.max_cpu_after), cpu_after, memory_after)
    groups = cluster.groups
    if groups.of_vm.has_row(vm):
        for g in groups.of_vm.row(vm).tolist():
            where = _partners(cluster, loads, vm, g) if groups.must[g] else None
            if where is None or where.size == 0:
                continue
            mark = take(_marked(n, where))
            if groups.together[g]:
                rows[FilterKind.TOGETHER.row] |= ~mark
            else:
                rows[FilterKind.ANTI.row] |= mark
    rules = cluster.host_rules
    if rules.of_vm.has_row(vm):
        for r in rules.of_vm.row(vm).tolist():
            if rules.must[r]:
                mark = take(_marked(n, rules.hosts.row(r)))
                if rules.on[r]:
                    rows[FilterKind.HOST_ON.row] |= ~mark
                else:
                    rows[FilterKind.HOST_OFF.row] |= mark
    if left != NO_HOST:
        rows[FilterKind.LEFT.row] = index == left
    if loads.vm_host[vm] != NO_HOST and not view.one_cluster:  # a VM moves within its cluster (a new one anywhere)
        rows[FilterKind.CLUSTER.row] = view.cluster != cluster.host_cluster[loads.vm_host[vm]]
    if loads.vm_host[vm] != NO_HOST and policy.migration_tls is TlsMode.REQUIRED:
        tls = cluster.host_migration_tls
        rows[FilterKind.TLS.row] = ~take(tls) | ~tls[loads.vm_host[vm]]
    _what_it_brings(cluster, loads, vm, rows, take)
    _only_current(rows, current)
    return Assessment(vm, index, rows, cpu_after, memory_after, view.all_hosts, view)


def reason(cluster: ClusterArrays, loads: Loads, vm: int, policy: FilterPolicy, which: FilterKind, host: int) -> str:
    """Why filter `which` rejects `host` for `vm`, with the numbers."""
    vm_id = cluster.vm_ids[vm]
    if which == FilterKind.CURRENT:
        return "is the VM's current host"
    if which == FilterKind.EXCLUDED:
        return "excluded by the request or the plan (a host being emptied, drained or switched off)"
    if which == FilterKind.DISABLED:
        return "in maintenance or disabled"
    if which == FilterKind.MODEL:
        have = int(cluster.host_cpu_model[host])
        name = cluster.cpu_models[have] if have != ANY_MODEL else "unknown"
        return f"CPU model {name!r} differs from {vm_id}'s {cluster.cpu_models[int(cluster.vm_cpu_model[vm])]!r}"
    if which == FilterKind.VCPUS:
        cap = cluster.host_cores[host] * policy.cpu_allocation_ratio
        return (f"vCPUs: {loads.host_vcpus[host]:g} + {cluster.vm_vcpus[vm]:g} > {cap:g} allowed "
                f"({cluster.host_cores[host]:g} cores x {policy.cpu_allocation_ratio:g})")
    if which == FilterKind.MEMORY:
        cap = cluster.host_memory_mib[host] * policy.memory_allocation_ratio
        return (f"memory: needs {cluster.vm_memory_mib[vm]:.0f} MiB, "
                f"{max(0.0, cap - loads.host_memory_mib[host]):.0f} of {cap:.0f} MiB free")
    if which == FilterKind.HEADROOM:
        after = (loads.host_cpu[host] + cluster.vm_cpu[vm]) / cluster.host_cores[host]
        return f"CPU load would reach {after:.0%} > {policy.max_cpu_after:.0%}"
    if which in (FilterKind.ANTI, FilterKind.TOGETHER):
        groups = cluster.groups
        for g in groups.of_vm.row(vm).tolist():
            if not groups.must[g] or bool(groups.together[g]) != (which == FilterKind.TOGETHER):
                continue
            members = groups.members.row(g)
            here = members[(members != vm) & (loads.vm_host[members] == host)]
            if which == FilterKind.ANTI and here.size:
                return f"anti-affinity group {groups.names[g]!r}: VM {cluster.vm_ids[int(here[0])]} runs there"
            if which == FilterKind.TOGETHER and not here.size and _partners(cluster, loads, vm, g).size:
                return f"affinity group {groups.names[g]!r} must stay together and runs elsewhere"
        return "group rule"
    if which in (FilterKind.HOST_ON, FilterKind.HOST_OFF):
        rules = cluster.host_rules
        for r in rules.of_vm.row(vm).tolist():
            inside = bool((rules.hosts.row(r) == host).any())
            if rules.must[r] and bool(rules.on[r]) == (which == FilterKind.HOST_ON) and inside != bool(rules.on[r]):
                return f"rule {rules.names[r]!r}: {vm_id} must {'run on' if rules.on[r] else 'stay off'} its hosts"
        return "host rule"
    if which == FilterKind.LEFT:
        return f"{vm_id} left this host within its cooldown (it does not move back and forth)"
    if which == FilterKind.CLUSTER:
        here = cluster.clusters[int(cluster.host_cluster[loads.vm_host[vm]])]
        return (f"in cluster {cluster.clusters[int(cluster.host_cluster[host])]!r}; {vm_id} runs in {here!r} "
                "and moves only within it")
    if which == FilterKind.TLS:
        source = int(loads.vm_host[vm])
        missing = [f"{vm_id}'s host {cluster.host_ids[source]}" if h == source else "this host"
                   for h in dict.fromkeys((host, source)) if not cluster.host_migration_tls[h]]
        return (f"{' and '.join(missing)} {'offers' if len(missing) == 1 else 'offer'} no TLS for migration "
                "(setting migration_tls = required)")
    if which == FilterKind.NETWORK:
        networks = cluster.networks
        missing = [repr(networks.names[k]) for k in networks.of_vm.row(vm).tolist()
                   if not (networks.hosts.row(k) == host).any()]
        return f"lacks network{'s' if len(missing) > 1 else ''} {', '.join(missing)} that {vm_id} uses"
    if which == FilterKind.DISK:
        free = cluster.host_disk_free_mib[host] - loads.host_disk_in_mib[host]
        return (f"local disk space: {vm_id}'s local disks need {cluster.vm_local_disk_mib[vm]:.0f} MiB, "
                f"{max(0.0, free):.0f} MiB free")
    raise ValueError(f"unknown filter {which}")


def rejections(cluster: ClusterArrays, loads: Loads, a: Assessment, policy: FilterPolicy,
               limit: int = len(FILTERS)) -> tuple[Rejection, ...]:
    """Each filter's rejections, most frequent first, at most `limit` filters."""
    counts = a.counts().tolist()
    out = []
    # the filters that reject any host, most first, ties in FILTERS order
    for row in sorted((row for row, n in enumerate(counts) if n), key=lambda row: -counts[row])[:limit]:
        host = a.first_rejected(row)
        out.append(Rejection(FILTERS[row], counts[row], cluster.host_ids[host],
                             reason(cluster, loads, a.vm, policy, FILTERS[row], host)))
    return tuple(out)


def judge(cluster: ClusterArrays, vm: int, host: int, policy: FilterPolicy) -> dict[FilterKind, str]:
    """The filters that reject `host` for `vm` as the cluster is now, each with its reason (empty: it may go)."""
    a = assess(cluster, cluster.loads, vm, policy, hosts=np.array([host], dtype=np.int64))
    return {kind: reason(cluster, cluster.loads, vm, policy, kind, host)
            for kind in FILTERS if a.rejected[kind.row, 0]}
