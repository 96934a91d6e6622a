"""CPU allocation on a host, as CloudSim's VmSchedulerTimeSharedOverSubscription and HostDynamicWorkload do it.

Every copy of a VM on a host is a *residency*: NORMAL, OUT (the source copy of a migrating VM) or IN (the
target's copy). Per PE a request is capped at the host's PE MIPS. The scheduler gives NORMAL the capped request,
OUT 90 % of it and IN 10 %; when the capped requests (IN at 10 %) exceed the host's MIPS, all are scaled by
capacity / demand and floored. The host's *used* MIPS (what its power follows) counts OUT at allocation / 0.9,
i.e. the source still burns the VM's full share; its *requested* MIPS counts every residency's full, uncapped
request. A host is SLA-violating while used < requested: capping, scaling, or a VM migrating in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from advisor.simulation.arrays import BoolArray, FloatArray, IntArray

NORMAL, OUT, IN = 0, 1, 2


@dataclass(frozen=True)
class Allocation:
    """Per residency (in the input order) and per host results of one allocation pass."""

    allocated: FloatArray  # MIPS the scheduler gives each residency
    host_used: FloatArray  # CloudSim's utilizationMips
    host_requested: FloatArray  # sum of uncapped requests
    host_available: FloatArray  # scheduler's available MIPS (0 when oversubscribed)
    host_oversubscribed: BoolArray


def allocate(
    host: IntArray, kind: IntArray, req_pe: FloatArray, pes: IntArray, pe_mips: FloatArray, total_mips: FloatArray
) -> Allocation:
    """Allocate every host at once; residencies must be grouped by host in vmList order (sums are sequential)."""
    n_hosts = total_mips.shape[0]
    capped_pe = np.minimum(req_pe, pe_mips[host])
    # Each np.where below is skipped when its condition holds nowhere (no multi-PE VM, no migration): it would
    # return its last operand unchanged, and a day's thousands of allocations spend most of their time there.
    multi = pes != 1
    any_multi = bool(multi.any())
    capped = np.where(multi, capped_pe * pes, capped_pe) if any_multi else capped_pe
    inbound = kind == IN
    outbound = kind == OUT
    any_in, any_out = bool(inbound.any()), bool(outbound.any())
    required = np.where(inbound, capped * 0.1, capped) if any_in else capped
    host_required = np.bincount(host, weights=required, minlength=n_hosts)
    over = host_required > total_mips
    alloc_pe = capped_pe
    if any_in or any_out:
        alloc_pe = np.where(outbound, capped_pe * 0.9, np.where(inbound, capped_pe * 0.1, capped_pe))
    if over.any():
        scale = np.where(over, total_mips / np.where(over, host_required, 1.0), 1.0)[host]
        scaled = np.where(
            outbound, capped_pe * scale * 0.9, np.where(inbound, capped_pe * 0.1 * scale, capped_pe * scale)
        )
        alloc_pe = np.where(over[host], np.floor(scaled), alloc_pe)
    allocated = np.where(multi, alloc_pe * pes, alloc_pe) if any_multi else alloc_pe
    used = np.where(outbound, allocated / 0.9, allocated) if any_out else allocated
    req_total = np.where(multi, req_pe * pes, req_pe) if any_multi else req_pe
    return Allocation(
        allocated=allocated,
        host_used=np.bincount(host, weights=used, minlength=n_hosts).astype(np.float64),
        host_requested=np.bincount(host, weights=req_total, minlength=n_hosts).astype(np.float64),
        host_available=np.where(over, 0.0, total_mips - host_required),
        host_oversubscribed=over,
    )


def allocate_one(
    kinds: Sequence[int], req_pe: Sequence[float], pes: Sequence[int], pe_mips: float, total_mips: float
) -> tuple[list[float], float]:
    """One host, in plain Python (policies call it per tentative change): allocations and available MIPS."""
    capped_pe = [min(r, pe_mips) for r in req_pe]
    required = 0.0
    for c, k, p in zip(capped_pe, kinds, pes, strict=True):
        required += c * p * 0.1 if k == IN else c * p
    if required > total_mips:
        scale = total_mips / required
        alloc = [
            float(math.floor(c * scale * 0.9 if k == OUT else c * 0.1 * scale if k == IN else c * scale) * p)
            for c, k, p in zip(capped_pe, kinds, pes, strict=True)
        ]
        return alloc, 0.0
    alloc = [
        float(c * 0.9 if k == OUT else c * 0.1 if k == IN else c) * p
        for c, k, p in zip(capped_pe, kinds, pes, strict=True)
    ]
    return alloc, total_mips - required
