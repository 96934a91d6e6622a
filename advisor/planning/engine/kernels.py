"""Compiled loops of the filters and weighers: the capacity filters, the first rejecting filter of each host and the
load, balance and energy components, one pass over the hosts assessed instead of a dozen NumPy calls each.

A plan assesses a pool of about a thousand hosts for each candidate VM, ten thousand times at 10,000 hosts, where
each NumPy call's own overhead (1-3 us) outweighed its work. Each loop does the same operations in the same order
as the array expressions it replaces (a division by zero gives inf or NaN, as NumPy's; np.maximum and np.minimum
give the first NaN, and their second operand on a tie), so the results are the same to the bit.
"""

from __future__ import annotations

import math
from typing import Any

import numba


@numba.njit(cache=True, nogil=True)
def _maximum(a: float, b: float) -> float:  # pragma: no cover - compiled
    """np.maximum of two floats: the first NaN (its sign kept), else `b` when they are equal (as 0.0 and -0.0)."""
    if math.isnan(a):
        return a
    if math.isnan(b):
        return b
    return a if a > b else b


@numba.njit(cache=True, nogil=True)
def _clip01(x: float) -> float:  # pragma: no cover - compiled
    """np.minimum(np.maximum(x, 0.0), 1.0) of one float (each gives its second operand on a tie: -0.0 becomes 0.0)."""
    if math.isnan(x):
        return x
    lifted = x if x > 0.0 else 0.0
    return lifted if lifted < 1.0 else 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def capacity_rows(rows: Any, vcpus_row: int, memory_row: int, headroom_row: int, index: Any, host_vcpus: Any,
                  host_memory_mib: Any, host_cpu: Any, cores: Any, memory_mib: Any, vm_vcpus: float,
                  vm_memory_mib: float, vm_cpu: float, cpu_allocation_ratio: float, memory_allocation_ratio: float,
                  max_cpu_after: float, cpu_after: Any, memory_after: Any) -> None:  # pragma: no cover - compiled
    """The vCPU, memory and headroom filters' rows, and the loads after the move, of the hosts `index` (`cores`
    and `memory_mib` are theirs, the loads are over all hosts)."""
    for i in range(index.shape[0]):
        h = index[i]
        rows[vcpus_row, i] = host_vcpus[h] + vm_vcpus > cores[i] * cpu_allocation_ratio
        memory = (host_memory_mib[h] + vm_memory_mib) / memory_mib[i]
        memory_after[i] = memory
        rows[memory_row, i] = memory > memory_allocation_ratio
        cpu = (host_cpu[h] + vm_cpu) / cores[i]
        cpu_after[i] = cpu
        rows[headroom_row, i] = cpu > max_cpu_after


@numba.njit(cache=True, nogil=True)
def first_rows(rejected: Any, first: Any, counts: Any, example: Any) -> None:  # pragma: no cover - compiled
    """Per host (column), the first row that rejects it (-1: none), how many hosts each row is first for, and the
    lowest column each row is first for; `first` comes filled with -1, `counts` and `example` with 0."""
    n_rows, n = rejected.shape
    for row in range(n_rows):
        marks = rejected[row]
        rejects_any = False
        for i in range(n):  # a plain OR over the row, which the compiler vectorises: most rows reject no host
            rejects_any |= marks[i]
        if not rejects_any:
            continue
        for i in range(n):
            if marks[i] and first[i] < 0:
                first[i] = row
                if counts[row] == 0:
                    example[row] = i
                counts[row] += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def components(keep: Any, hosts: Any, cpu_after: Any, memory_after: Any, cpu_weight: float, memory_weight: float,
               balance: bool, mean_cpu: float, energy: bool, idle_w: Any, span_w: Any, power_w: Any,
               reference_w: float, kept_hosts: Any, kept_cpu: Any, kept_memory: Any, comps: Any, load_row: int,
               balance_row: int, energy_row: int, added: Any) -> None:  # pragma: no cover - compiled
    """The eligible columns `keep` of an assessment (hosts, loads after the move) and their load, balance and
    energy components (`weighers.weigh`); `idle_w`, `span_w` by column, `power_w` (each host's power now) by
    host. `comps` comes filled with zeros."""
    for j in range(keep.shape[0]):
        i = keep[j]
        h = hosts[i]
        cpu, memory = cpu_after[i], memory_after[i]
        kept_hosts[j], kept_cpu[j], kept_memory[j] = h, cpu, memory
        comps[load_row, j] = _maximum(cpu_weight * cpu, memory_weight * memory)
        if balance:
            off = cpu - mean_cpu
            comps[balance_row, j] = off * off
        if energy:
            watts = idle_w[i] + span_w[i] * _clip01(cpu) - power_w[h]
            added[j] = watts
            comps[energy_row, j] = watts / reference_w


@numba.njit(cache=True, nogil=True)
def _before(a: float, b: float) -> bool:  # pragma: no cover - compiled
    """np.sort's order: a < b, NaN after every number."""
    return a < b or (math.isnan(b) and not math.isnan(a))


@numba.njit(cache=True, nogil=True)
def sorted_cases(x: Any, n: int, out: Any) -> None:  # pragma: no cover - compiled
    """`np.sort(x.reshape(3, n).T, axis=-1)` into `out` (n, 3): the three cases of each row, lowest first, by the
    insertion sort NumPy uses on so few values (ties keep their order, NaN last and written as NumPy's NaN)."""
    for i in range(n):
        a, b, c = x[i], x[n + i], x[2 * n + i]
        if _before(b, a):
            a, b = b, a
        if _before(c, b):
            b, c = c, b
            if _before(b, a):
                a, b = b, a
        out[i, 0] = math.nan if math.isnan(a) else a
        out[i, 1] = math.nan if math.isnan(b) else b
        out[i, 2] = math.nan if math.isnan(c) else c
