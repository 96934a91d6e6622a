"""The engine's arrays of the domain's hosts, VMs and latest measurements: built whole (`from_domain`), or kept with
what they were built from (`Tracked`) so that an inventory change or new measurements update the rows they touch.

A whole build reads every host and VM in Python (about 0.1 s at 20,000 VMs); an update reads only the hosts and
VMs it names and recomputes the rest with numpy over the arrays (milliseconds). Both go through the same row
functions and the same `_assemble`, and the tests check that an updated snapshot equals one built whole from the
same inventory and measurements. Columns that depend on every VM (CPU models, affinity groups, the host index) are
recomputed whole only when a change touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Any, TypeVar

import numpy as np

from advisor.domain.automation import cluster_of
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Disk, Host, Vm, label_asks_cold, label_forbids_postcopy
from advisor.physics import blind_dirty_rate, resident_fits_vm
from advisor.physics.measurement import at_floor_dirty_rate
from advisor.planning.engine.measured import HostMeasurement, Measured, VmMeasurement
from advisor.planning.engine.relations import Groups, HostRules, Networks, Rule, group_rules, host_rules_of, networks_of
from advisor.planning.engine.snapshot import (
    ANY_MODEL,
    NO_HOST,
    BoolArray,
    ClusterArrays,
    FloatArray,
    IntArray,
    host_sums,
)

E = TypeVar("E", Host, Vm)


@dataclass(frozen=True)
class _HostColumns:
    ids: tuple[str, ...]
    cores: FloatArray
    memory_mib: FloatArray
    cpu_model: IntArray
    disabled: BoolArray
    bandwidth_mib_s: FloatArray
    idle_w: FloatArray
    max_w: FloatArray
    cluster: IntArray
    clusters: tuple[str, ...]
    migration_tls: BoolArray
    disk_free_mib: FloatArray

    @staticmethod
    def of(hosts: Sequence[Host], model_index: Mapping[str, int], cluster_label: str,
           disabled: frozenset[str] = frozenset()) -> _HostColumns:
        names = [cluster_of(h.labels, cluster_label) if cluster_label else "" for h in hosts]
        clusters = {c: k for k, c in enumerate(sorted(set(names) or {""}))}
        return _HostColumns(
            tuple(h.id for h in hosts), np.array([h.cpu_cores for h in hosts], dtype=np.float64),
            np.array([h.memory_mib for h in hosts], dtype=np.float64),
            np.array([model_index[h.cpu_model] if h.cpu_model else ANY_MODEL for h in hosts], dtype=np.int64),
            np.array([h.in_maintenance or h.id in disabled for h in hosts], dtype=bool),
            np.array([h.network_bandwidth_mib_s for h in hosts], dtype=np.float64),
            np.array([h.idle_power_w for h in hosts], dtype=np.float64),
            np.array([h.max_power_w for h in hosts], dtype=np.float64),
            np.array([clusters[c] for c in names], dtype=np.int64), tuple(clusters),
            np.array([h.migration_tls for h in hosts], dtype=bool),
            np.array([np.nan if h.local_disk_free_mib is None else h.local_disk_free_mib for h in hosts],
                     dtype=np.float64),
        )

    @staticmethod
    def of_arrays(a: ClusterArrays) -> _HostColumns:
        return _HostColumns(a.host_ids, a.host_cores, a.host_memory_mib, a.host_cpu_model, a.host_disabled,
                            a.host_bandwidth_mib_s, a.host_idle_w, a.host_max_w, a.host_cluster, a.clusters,
                            a.host_migration_tls, a.host_disk_free_mib)


@dataclass(frozen=True)
class _VmColumns:
    where: IntArray
    vcpus: FloatArray
    memory_mib: FloatArray
    cpu_model: IntArray
    postcopy: BoolArray
    movable: BoolArray
    local_disk_mib: FloatArray
    local_disk_used_mib: FloatArray
    disk_write_rate_mib_s: FloatArray  # NaN: not measured (any of its local disks)
    cold: BoolArray

    @staticmethod
    def of(vms: Sequence[Vm], host_index: Mapping[str, int], model_index: Mapping[str, int],
           pinned: frozenset[str]) -> _VmColumns:
        # the local disks' columns: 0 for a VM without disks (most), so only the others' are summed (the first
        # snapshot at 200,000 VMs read every VM's local disks three times)
        size, used, written = np.zeros(len(vms)), np.zeros(len(vms)), np.zeros(len(vms))
        for k in (k for k, v in enumerate(vms) if v.disks):
            local = vms[k].local_disks
            size[k], used[k], written[k] = (sum(d.size_mib for d in local), sum(d.used_mib for d in local),
                                            _write_rate(local))
        return _VmColumns(
            np.array([host_index.get(v.host_id, NO_HOST) for v in vms], dtype=np.int64),
            np.array([v.vcpus for v in vms], dtype=np.float64), np.array([v.memory_mib for v in vms], np.float64),
            np.array([model_index[v.cpu_model] if v.cpu_model else ANY_MODEL for v in vms], dtype=np.int64),
            np.array([v.postcopy_allowed and not label_forbids_postcopy(v.labels) for v in vms], dtype=bool),
            np.array([v.id not in pinned for v in vms], dtype=bool), size, used, written,
            np.array([label_asks_cold(v.labels) for v in vms], dtype=bool),
        )

    @staticmethod
    def of_arrays(a: ClusterArrays) -> _VmColumns:
        return _VmColumns(a.vm_host, a.vm_vcpus, a.vm_memory_mib, a.vm_cpu_model, a.vm_postcopy, a.vm_movable,
                          a.vm_local_disk_mib, a.vm_local_disk_used_mib, a.vm_disk_write_pushed_mib_s, a.vm_cold)

    def taken(self, source: IntArray, pushed_rows: IntArray, pushed: _VmColumns) -> _VmColumns:
        """Row k from row `source[k]` of these columns, then `pushed`'s rows set at `pushed_rows`."""
        out = []
        for mine, theirs in zip(self._columns(), pushed._columns(), strict=True):
            column = _take(mine, source, 0)
            column[pushed_rows] = theirs
            out.append(column)
        return _VmColumns(*out)

    def _columns(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


def _write_rate(local_disks: Sequence[Disk]) -> float:
    """The summed write rate of a VM's local disks, NaN when any of them was not measured (as the inputs')."""
    rates = [d.write_rate_mib_s for d in local_disks]
    return float("nan") if None in rates else float(sum(r for r in rates if r is not None))


def _cpu_models(hosts: Iterable[Host], vms: Iterable[Vm]) -> tuple[str, ...]:
    return tuple(sorted({h.cpu_model for h in hosts if h.cpu_model} | {v.cpu_model for v in vms if v.cpu_model}))


def _assemble(hosts: _HostColumns, vm_ids: Sequence[str], vms: _VmColumns, measured: Measured, groups: Groups,
              host_rules: HostRules, models: Sequence[str], networks: Networks) -> ClusterArrays:
    """The arrays, with what depends on several rows (CPU shares, loads) computed here with numpy.

    A VM without a measurement shares, by vCPUs, what its host's measurement leaves unexplained, or is taken as
    fully busy on a host without one (pessimistic); a measured host keeps what its VMs do not explain as its base
    load: the host's measurement is the truth about its load. A dirty rate read blind (a busy guest reading ~0,
    advisor.physics.blind_dirty_rate) is unknown, its window too, as advice takes them; one at page sampling's
    floor is flagged (`vm_dirty_at_floor`), for the physics to take as blind."""
    n, where, vcpus = len(hosts.ids), vms.where, vms.vcpus
    known = ~np.isnan(measured.vm_cpu)
    vm_busy = vcpus * np.clip(np.nan_to_num(measured.vm_cpu, nan=1.0), 0.0, 1.0)
    host_busy = measured.host_cpu * hosts.cores
    unknown_vcpus = host_sums(n, where, np.where(known, 0.0, vcpus))
    left = np.maximum(0.0, np.nan_to_num(host_busy, nan=np.inf) - host_sums(n, where, np.where(known, vm_busy, 0.0)))
    share = np.where(unknown_vcpus > 0, np.minimum(1.0, left / np.maximum(unknown_vcpus, 1e-9)), 1.0)
    placed = where >= 0
    vm_busy = np.where(~known & placed, vcpus * share[np.where(placed, where, 0)], vm_busy)
    base = np.where(np.isnan(host_busy), 0.0, np.maximum(0.0, host_busy - host_sums(n, where, vm_busy)))
    used, resident = measured.vm_memory_used_mib, measured.vm_resident_memory_mib
    resident = np.where(resident_fits_vm(resident, vms.memory_mib), resident, np.nan)
    dirty, window = measured.vm_dirty_rate_mib_s, measured.vm_working_set_mib
    blind = blind_dirty_rate(dirty, window, measured.vm_cpu)
    return ClusterArrays.build(
        host_ids=hosts.ids, host_cores=hosts.cores, host_memory_mib=hosts.memory_mib, host_cpu_model=hosts.cpu_model,
        host_disabled=hosts.disabled, host_bandwidth_mib_s=hosts.bandwidth_mib_s, host_idle_w=hosts.idle_w,
        host_max_w=hosts.max_w, host_base_cpu=base, host_cluster=hosts.cluster, clusters=hosts.clusters,
        host_migration_tls=hosts.migration_tls, host_disk_free_mib=hosts.disk_free_mib,
        host_load_per_cpu=measured.host_load_per_cpu, vm_ids=vm_ids, vm_host=where, vm_vcpus=vcpus,
        vm_memory_mib=vms.memory_mib, vm_cpu=vm_busy,
        vm_memory_used_mib=np.where(np.isnan(used) | (used == 0), vms.memory_mib, used),
        vm_cpu_model=vms.cpu_model, vm_dirty_rate_mib_s=np.where(blind, np.nan, dirty), vm_postcopy=vms.postcopy,
        vm_working_set_mib=np.where(blind, np.nan, np.minimum(window, vms.memory_mib)),  # at most all of it
        vm_dirty_at_floor=at_floor_dirty_rate(dirty, window, measured.vm_cpu),
        vm_movable=vms.movable, vm_local_disk_mib=vms.local_disk_mib,
        vm_local_disk_used_mib=vms.local_disk_used_mib,
        vm_disk_write_rate_mib_s=np.where(np.isnan(measured.vm_disk_write_rate_mib_s), vms.disk_write_rate_mib_s,
                                          measured.vm_disk_write_rate_mib_s),
        vm_disk_write_pushed_mib_s=vms.disk_write_rate_mib_s, vm_resident_memory_mib=resident,
        vm_cold=vms.cold, groups=groups, host_rules=host_rules, cpu_models=models, networks=networks,
    )


def _index(items: Sequence[str]) -> dict[str, int]:
    return {item: k for k, item in enumerate(items)}


def from_domain(
    hosts: Sequence[Host],
    vms: Sequence[Vm],
    host_cpu: Mapping[str, float],
    vm_cpu: Mapping[str, float],
    rules: Iterable[Rule] = (),
    *,
    vm_memory_used_mib: Mapping[str, float] | None = None,
    vm_dirty_rate_mib_s: Mapping[str, float] | None = None,
    vm_disk_write_rate_mib_s: Mapping[str, float] | None = None,
    vm_resident_memory_mib: Mapping[str, float] | None = None,
    vm_working_set_mib: Mapping[str, float] | None = None,
    host_load_per_cpu: Mapping[str, float] | None = None,
    disabled: Iterable[str] = (),
    pinned: Iterable[str] = (),
    cluster_label: str = "",
) -> ClusterArrays:
    """The arrays of a cluster of domain values.

    `host_cpu` is measured utilisation of a host's cores, `vm_cpu` of a VM's vCPUs (both ratios, where known); see
    `_assemble` for VMs without one. A VM on a host that is not listed is unplaced (-1). Hosts are grouped into
    clusters by their label `cluster_label` (none: one cluster), and a VM moves only within its host's.
    """
    measured = Measured.of(hosts, vms, host_cpu, vm_cpu, vm_memory_used_mib or {}, vm_dirty_rate_mib_s or {},
                           vm_disk_write_rate_mib_s, vm_resident_memory_mib, vm_working_set_mib, host_load_per_cpu)
    return _from_domain(hosts, vms, measured, tuple(rules), frozenset(disabled), frozenset(pinned), cluster_label)


def _from_domain(hosts: Sequence[Host], vms: Sequence[Vm], measured: Measured, rules: tuple[Rule, ...],
                 disabled: frozenset[str], pinned: frozenset[str], cluster_label: str) -> ClusterArrays:
    models = _cpu_models(hosts, vms)
    host_columns = _HostColumns.of(hosts, _index(models), cluster_label, disabled)
    host_index, vm_index = _index(host_columns.ids), _index([v.id for v in vms])
    return _assemble(host_columns, list(vm_index), _VmColumns.of(vms, host_index, _index(models), pinned),
                     measured, group_rules(vms, rules, vm_index),
                     host_rules_of(rules, len(vms), vm_index, host_index), models, networks_of(hosts, vms))


@dataclass(frozen=True)
class Tracked:
    """Arrays with the hosts, VMs and measurements they were built from (by row), so that a change is applied to
    them rather than rebuilt: `with_change`, `with_measurements`, `with_pinned` each return a new one and leave
    this one alone (readers may be using it). Serving's snapshot: no explicit rules, no host disabled by hand."""

    arrays: ClusterArrays
    hosts: tuple[Host, ...]
    vms: tuple[Vm, ...]
    measured: Measured
    pinned: frozenset[str]
    cluster_label: str

    @staticmethod
    def build(hosts: Sequence[Host], vms: Sequence[Vm], measured: Measured, pinned: frozenset[str],
              cluster_label: str) -> Tracked:
        arrays = _from_domain(hosts, vms, measured, (), frozenset(), pinned, cluster_label)
        return Tracked(arrays, tuple(hosts), tuple(vms), measured, pinned, cluster_label)

    def with_change(self, change: InventoryChange) -> Tracked:
        """After an inventory change, applied as `Cluster.apply` applies it: what is removed goes, what is pushed
        replaces its row if known, else comes last. A VM new here has no measurement yet (NaN)."""
        a = self.arrays
        hosts, host_source, host_rows = _rows_after(self.hosts, a.host_index, change.removed_host_ids, change.hosts)
        vms, vm_source, pushed_rows = _rows_after(self.vms, a.vm_index, change.removed_vm_ids, change.vms)
        m = self.measured
        measured = Measured(**{c.name: _take(getattr(m, c.name), host_source if c.name.startswith("host_")
                                             else vm_source, np.nan) for c in fields(Measured)})
        removed_vms = [self.vms[a.vm_index(i)] for i in change.removed_vm_ids]
        pushed_over = [(self.vms[s] if s >= 0 else None, vm)  # (what it replaces, the VM pushed)
                       for s, vm in zip(vm_source[pushed_rows].tolist(), change.vms, strict=True)]
        replaced_vms = [*removed_vms, *(old for old, _ in pushed_over if old is not None)]
        replaced_hosts = [*(self.hosts[a.host_index(i)] for i in change.removed_host_ids),
                          *(self.hosts[s] for s in host_source[host_rows] if s >= 0)]
        models = a.cpu_models
        if any(e.cpu_model for e in (*replaced_vms, *replaced_hosts, *change.vms, *change.hosts)):
            models = _cpu_models(hosts, vms)
        if models != a.cpu_models or change.removed_host_ids or (host_source < 0).any():
            # Every row's model or host index may have shifted: the rows again, from the values kept here.
            return Tracked.build(hosts, vms, measured, self.pinned, self.cluster_label)
        host_columns = _HostColumns.of_arrays(a)
        if change.hosts:
            host_columns = _HostColumns.of(hosts, _index(models), self.cluster_label)
        pushed = _VmColumns.of(change.vms, _index(host_columns.ids), _index(models), self.pinned)
        columns = _VmColumns.of_arrays(a).taken(vm_source, pushed_rows, pushed)
        groups = a.groups
        resized = len(vms) != len(self.vms) or bool(change.removed_vm_ids)
        if any(_groups(v) != _groups(None) for v in removed_vms) or any(
                _groups(old) != _groups(new) for old, new in pushed_over) or (resized and a.groups.names):
            groups = group_rules(vms, (), {})
        elif resized:
            groups = Groups.none(len(vms))
        networks = a.networks
        if any(e.networks for e in (*replaced_vms, *replaced_hosts, *change.vms, *change.hosts)) or (
                resized and a.networks.names):
            networks = networks_of(hosts, vms)
        elif resized:
            networks = Networks.none(len(vms))
        kept_ids = [a.vm_ids[k] for k in vm_source[vm_source >= 0].tolist()] if change.removed_vm_ids else a.vm_ids
        vm_ids = [*kept_ids, *(vms[k].id for k in range(len(kept_ids), len(vms)))]
        arrays = _assemble(host_columns, vm_ids, columns, measured, groups, HostRules.none(len(vms)), models,
                           networks)
        return replace(self, arrays=arrays if resized else arrays.sharing_index(a), hosts=tuple(hosts), vms=tuple(vms),
                       measured=measured)

    def with_measurements(self, hosts: Mapping[str, HostMeasurement], vms: Mapping[str, VmMeasurement]) -> Tracked:
        """With the latest measurements of these hosts and VMs, NaN for none; ids not here (removed meanwhile) are
        left out."""
        return self.with_measured_rows(list(hosts), _as_rows(hosts.values(), HostMeasurement),
                                       list(vms), _as_rows(vms.values(), VmMeasurement))

    def with_measured_rows(self, host_ids: Sequence[str], host_values: FloatArray, vm_ids: Sequence[str],
                           vm_values: FloatArray) -> Tracked:
        """`with_measurements` of measurements as rows of arrays, a row per id in the order of HostMeasurement's or
        VmMeasurement's fields (an update after a batch of samples names thousands of VMs: no object each)."""
        a = self.arrays
        columns = {c.name: getattr(self.measured, c.name) for c in fields(Measured)}
        changed = False
        for prefix, kind, ids, values, index in (("host_", HostMeasurement, host_ids, host_values, a.host_index),
                                                  ("vm_", VmMeasurement, vm_ids, vm_values, a.vm_index)):
            found = [(j, k) for j, ident in enumerate(ids) if (k := _row_of(index, ident)) is not None]
            if not found:
                continue
            given, rows = np.array(found, dtype=np.int64).T
            for f, c in enumerate(fields(kind)):
                column = columns[prefix + c.name] = columns[prefix + c.name].copy()
                column[rows] = values[given, f]
            changed = True
        return self._with(Measured(**columns)) if changed else self

    def with_pinned(self, pinned: frozenset[str]) -> Tracked:
        """With these VMs unmovable (opted out, migrating now) and no other."""
        if pinned == self.pinned:
            return self
        movable = np.array([v not in pinned for v in self.arrays.vm_ids], dtype=bool)
        return replace(self, arrays=replace(self.arrays, vm_movable=movable).sharing_index(self.arrays),
                       pinned=pinned)

    def _with(self, measured: Measured) -> Tracked:
        a = self.arrays
        arrays = _assemble(_HostColumns.of_arrays(a), a.vm_ids, _VmColumns.of_arrays(a), measured, a.groups,
                           a.host_rules, a.cpu_models, a.networks)
        return replace(self, arrays=arrays.sharing_index(a), measured=measured)


def _groups(vm: Vm | None) -> tuple[frozenset[str], frozenset[str]]:
    return (vm.affinity_groups, vm.anti_affinity_groups) if vm is not None else (frozenset(), frozenset())


def _as_rows(values: Iterable[HostMeasurement | VmMeasurement], kind: type) -> FloatArray:
    """Measurements as rows of an array, in the order of `kind`'s fields."""
    names = [c.name for c in fields(kind)]
    read = attrgetter(*names)
    return np.array([read(value) for value in values], dtype=np.float64).reshape(-1, len(names))


def _row_of(index: Callable[[str], int], ident: str) -> int | None:
    try:
        return index(ident)
    except KeyError:
        return None


def _take(column: Any, source: IntArray, fill: float) -> Any:
    """`column[source]`, with `fill` where `source` is -1 (a row new here)."""
    out = np.full(len(source), fill, dtype=column.dtype)
    kept = source >= 0
    out[kept] = column[source[kept]]
    return out


def _rows_after(old: tuple[E, ...], index: Callable[[str], int], removed: Sequence[str],
                pushed: Sequence[E]) -> tuple[list[E], IntArray, IntArray]:
    """The rows after removing `removed` and pushing `pushed` (in place if known, else at the end), as a dict
    keeps them; for each new row the old one it comes from (-1: new), and the rows of `pushed`."""
    gone = np.array(sorted(index(i) for i in removed), dtype=np.int64)
    keep = np.ones(len(old), dtype=bool)
    keep[gone] = False
    source = np.flatnonzero(keep)
    rows = [old[k] for k in source.tolist()] if len(gone) else list(old)
    placed = []
    appended = 0
    for item in pushed:
        k = _row_of(index, item.id)
        if k is not None and keep[k]:
            row = k - int(np.searchsorted(gone, k))
            rows[row] = item
        else:
            row = len(rows)
            rows.append(item)
            appended += 1
        placed.append(row)
    return rows, np.concatenate([source, np.full(appended, -1, np.int64)]), np.array(placed, dtype=np.int64)
