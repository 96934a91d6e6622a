"""The compiled loops of the filters and weighers give the same bits as the NumPy expressions they replace, on random
columns with the awkward values in them: zero cores and memory (inf and NaN), NaN loads, negative loads, -0.0."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from advisor.planning.engine.kernels import capacity_rows, components, first_rows, sorted_cases

AWKWARD = np.array([0.0, -0.0, np.nan, np.inf, -1e-17, 1.0])


def columns(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Random values with some of AWKWARD mixed in."""
    values = rng.uniform(0.0, scale, n)
    odd = rng.random(n) < 0.1
    values[odd] = rng.choice(AWKWARD, int(odd.sum())) * scale
    return values


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", range(20))
def test_capacity_rows_are_the_array_expressions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_hosts, n = 60, 40
    index = rng.choice(n_hosts, n, replace=False).astype(np.int64)
    vcpus, memory, cpu = (columns(rng, n_hosts, s) for s in (64.0, 262144.0, 48.0))
    cores, memory_mib = columns(rng, n, 64.0), columns(rng, n, 262144.0)
    vm_vcpus, vm_memory, vm_cpu = float(rng.choice([0.0, 2.0, np.nan])), float(rng.uniform(0, 8192)), float(
        rng.choice([0.0, 1.5, np.nan]))
    rows = np.zeros((16, n), dtype=bool)
    cpu_after, memory_after = np.empty(n), np.empty(n)
    capacity_rows(rows, 4, 5, 6, index, vcpus, memory, cpu, cores, memory_mib, vm_vcpus, vm_memory, vm_cpu, 4.0,
                  1.0, 0.85, cpu_after, memory_after)
    with np.errstate(all="ignore"):
        want_memory = (memory[index] + vm_memory) / memory_mib
        want_cpu = (cpu[index] + vm_cpu) / cores
        assert same_bits(rows[4], vcpus[index] + vm_vcpus > cores * 4.0)
    assert same_bits(memory_after, want_memory)
    assert same_bits(cpu_after, want_cpu)
    assert same_bits(rows[5], want_memory > 1.0)
    assert same_bits(rows[6], want_cpu > 0.85)
    assert not rows[[0, 1, 2, 3, *range(7, 16)]].any()


@pytest.mark.parametrize("seed", range(20))
def test_first_rows_is_the_first_rejecting_filter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rejected = rng.random((16, 50)) < rng.uniform(0.0, 0.3, (16, 1))
    first = np.full(50, -1, dtype=np.int64)
    counts, example = np.zeros(16, dtype=np.int64), np.zeros(16, dtype=np.int64)
    first_rows(rejected, first, counts, example)
    want = np.full(50, -1, dtype=np.int64)
    for row in range(15, -1, -1):
        want[rejected[row]] = row
    assert same_bits(first, want)
    assert same_bits(counts, np.bincount(want[want >= 0], minlength=16).astype(np.int64))
    assert [int(np.argmax(want == row)) for row in range(16)] == example.tolist()


def clip01(x: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.minimum(np.maximum(x, 0.0), 1.0)
    return clipped


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("balance", "energy"), [(False, False), (True, False), (False, True), (True, True)])
def test_components_are_the_array_expressions(seed: int, balance: bool, energy: bool) -> None:
    rng = np.random.default_rng(seed)
    n_hosts, n = 80, 50
    hosts = np.sort(rng.choice(n_hosts, n, replace=False)).astype(np.int64)
    keep = np.flatnonzero(rng.random(n) < 0.7).astype(np.int64)
    cpu_after, memory_after = columns(rng, n, 1.2), columns(rng, n, 1.2)
    idle_w, span_w, power_w = columns(rng, n, 200.0), columns(rng, n, 300.0), columns(rng, n_hosts, 500.0)
    cpu_weight, memory_weight = float(rng.choice([1.0, -1.0, 0.5])), float(rng.choice([1.0, 0.0, 2.0]))
    mean, reference = float(rng.uniform(0, 1)), float(rng.choice([450.0, 0.0]))
    k = keep.shape[0]
    kept_hosts, kept_cpu, kept_memory = np.empty(k, dtype=np.int64), np.empty(k), np.empty(k)
    comps, added = np.zeros((7, k)), np.zeros(k)
    components(keep, hosts, cpu_after, memory_after, cpu_weight, memory_weight, balance, mean, energy, idle_w,
               span_w, power_w, reference, kept_hosts, kept_cpu, kept_memory, comps, 0, 1, 2, added)
    want = np.zeros((7, k))
    c, m = cpu_after[keep], memory_after[keep]
    with np.errstate(all="ignore"):
        want[0] = np.maximum(cpu_weight * c, memory_weight * m)
        if balance:
            want[1] = (c - mean) ** 2
        want_added = idle_w[keep] + span_w[keep] * clip01(c) - power_w[hosts[keep]] if energy else np.zeros(k)
        if energy:
            want[2] = want_added / reference
    assert same_bits(kept_hosts, hosts[keep])
    assert same_bits(kept_cpu, c) and same_bits(kept_memory, m)
    assert same_bits(comps, want)
    assert same_bits(added, want_added)


@pytest.mark.parametrize("seed", range(10))
def test_sorted_cases_are_numpy_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    x = rng.uniform(0.0, 5.0, 3 * n)  # and ties, signed zeros, NaNs of either sign, infinities
    odd = rng.random(3 * n) < 0.5
    x[odd] = rng.choice(np.array([*AWKWARD, -np.nan, -1.0, 2.0, 3.0]), int(odd.sum()))
    out = np.empty((n, 3))
    sorted_cases(x, n, out)
    assert same_bits(out, np.sort(x.reshape(3, n).T, axis=-1))



def test_the_warm_up_compiles_every_loop_a_ranking_runs() -> None:
    """`warm_up` (run by the server before its first question) leaves each compiled loop of the filters and
    weighers with a signature, so the first RecommendTarget compiles nothing: in a process of its own, where no
    other test ran them first."""
    check = ("from advisor.planning.engine import kernels, warm_up\n"
             "assert not kernels.components.signatures\n"
             "warm_up()\n"
             "print(sorted(f.__name__ for f in (kernels.capacity_rows, kernels.first_rows, kernels.components)"
             " if f.signatures))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.split() == ["['capacity_rows',", "'components',", "'first_rows']"]
