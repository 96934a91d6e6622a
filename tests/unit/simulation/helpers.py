"""Builders for hand-made snapshots and traces (no files, no engine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advisor.simulation.allocation import NORMAL, allocate
from advisor.simulation.datacenter import Datacenter, HostType
from advisor.simulation.interface import Snapshot
from advisor.simulation.migration import cloudsim_migration_time
from advisor.simulation.power import PowerModel
from advisor.simulation.traces import Trace

LINEAR = PowerModel("linear 100-200 W", tuple(100.0 + 10 * i for i in range(11)))
SMALL = HostType("small", 1, 1000.0, 4096.0, 1000.0, LINEAR)


def datacenter(types: Sequence[HostType]) -> Datacenter:
    """Host i has types[i]."""
    unique = list(dict.fromkeys(types))
    return Datacenter(tuple(unique), np.array([unique.index(t) for t in types], dtype=np.int64))


def snapshot(
    dc: Datacenter,
    vm_mips: Sequence[float],
    vm_host: Sequence[int],
    requested: Sequence[float],
    *,
    vm_ram: Sequence[float] | None = None,
    history: np.ndarray | None = None,
    time_s: float = 300.1,
) -> Snapshot:
    """A snapshot with every VM (1 PE) on its host, in VM order, none migrating."""
    n = len(vm_mips)
    mips = np.array(vm_mips, dtype=np.float64)
    hosts = np.array(vm_host, dtype=np.int64)
    req = np.array(requested, dtype=np.float64)
    placed = np.flatnonzero(hosts >= 0)
    order = placed[np.lexsort((placed, hosts[placed]))]
    kinds = np.full(order.shape, NORMAL, dtype=np.int64)
    pes = np.ones(n, dtype=np.int64)
    alloc = allocate(hosts[order], kinds, req[order], pes[order], np.asarray(dc.pe_mips), np.asarray(dc.total_mips))
    hist = np.zeros((n, 30)) if history is None else np.asarray(history, dtype=np.float64)
    return Snapshot(
        time_s=time_s,
        step=1,
        interval_s=300.0,
        datacenter=dc,
        vm_mips=mips,
        vm_pes=pes,
        vm_ram_mb=np.array(vm_ram if vm_ram is not None else [1000.0] * n, dtype=np.float64),
        vm_bw_mbit_s=np.full(n, 100.0),
        vm_host=hosts,
        vm_utilization=req / mips,
        vm_requested_mips=req,
        vm_history=hist,
        history_len=int((hist != 0).any(axis=0).sum()),
        vm_migrating=np.zeros(n, dtype=bool),
        in_flight=(),
        residency_host=hosts[order],
        residency_vm=order.astype(np.int64),
        residency_kind=kinds,
        residency_allocated_mips=alloc.allocated,
        host_used_mips=alloc.host_used,
        host_requested_mips=alloc.host_requested,
        instantiating=False,
        migration_time=cloudsim_migration_time,
    )


def trace(utilization_percent: Sequence[Sequence[float]], vm_mips: Sequence[float], vm_ram: Sequence[float]) -> Trace:
    """A trace from per-VM rows of CPU % per 5-minute sample (padded like CloudSim)."""
    u = np.array(utilization_percent, dtype=np.float64).T / 100.0
    n = u.shape[1]
    return Trace(
        source="test",
        day="test",
        interval_s=300.0,
        utilization=np.vstack([u, u[-1:]]),
        vm_names=tuple(f"vm{i}" for i in range(n)),
        vm_mips=np.array(vm_mips, dtype=np.float64),
        vm_pes=np.ones(n, dtype=np.int64),
        vm_ram_mb=np.array(vm_ram, dtype=np.float64),
        vm_bw_mbit_s=np.full(n, 100.0),
    )
