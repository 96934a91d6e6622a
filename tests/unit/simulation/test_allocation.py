"""`allocate` skips the steps whose condition holds nowhere (no multi-PE VM, no migration): its results must stay
bit for bit those of every step done, on hosts with and without them, oversubscribed or not."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.simulation.allocation import IN, NORMAL, OUT, allocate


def every_step(host, kind, req_pe, pes, pe_mips, total_mips):
    """The allocation with every np.where applied (as before the shortcuts)."""
    n_hosts = total_mips.shape[0]
    capped_pe = np.minimum(req_pe, pe_mips[host])
    multi, inbound, outbound = pes != 1, kind == IN, kind == OUT
    capped = np.where(multi, capped_pe * pes, capped_pe)
    host_required = np.bincount(host, weights=np.where(inbound, capped * 0.1, capped), minlength=n_hosts)
    over = host_required > total_mips
    alloc_pe = np.where(outbound, capped_pe * 0.9, np.where(inbound, capped_pe * 0.1, capped_pe))
    if over.any():
        scale = np.where(over, total_mips / np.where(over, host_required, 1.0), 1.0)[host]
        scaled = np.where(outbound, capped_pe * scale * 0.9,
                          np.where(inbound, capped_pe * 0.1 * scale, capped_pe * scale))
        alloc_pe = np.where(over[host], np.floor(scaled), alloc_pe)
    allocated = np.where(multi, alloc_pe * pes, alloc_pe)
    used = np.where(outbound, allocated / 0.9, allocated)
    requested = np.where(multi, req_pe * pes, req_pe)
    return (allocated, np.bincount(host, weights=used, minlength=n_hosts),
            np.bincount(host, weights=requested, minlength=n_hosts), np.where(over, 0.0, total_mips - host_required),
            over)


@pytest.mark.parametrize("multi_pe", [False, True])
@pytest.mark.parametrize("kinds", [(NORMAL,), (NORMAL, OUT), (NORMAL, IN), (NORMAL, OUT, IN)])
@pytest.mark.parametrize("load", [0.3, 3.0])  # mostly room to spare; most hosts oversubscribed
def test_shortcuts_give_every_step_s_results(multi_pe, kinds, load):
    rng = np.random.default_rng(len(kinds) + 10 * multi_pe + int(load))
    n_hosts, n = 40, 300
    pe_mips = rng.choice([1860.0, 2660.0], n_hosts)
    total_mips = pe_mips * 2
    host = np.sort(rng.integers(0, n_hosts, n))
    kind = rng.choice(np.array(kinds, dtype=np.int64), n)
    pes = rng.integers(1, 4, n) if multi_pe else np.ones(n, dtype=np.int64)
    req_pe = rng.uniform(0, 2500, n) * load / 3 * rng.integers(0, 2, n)  # some requests are 0
    got = allocate(host, kind, req_pe, pes, pe_mips, total_mips)
    want = every_step(host, kind, req_pe, pes, pe_mips, total_mips)
    assert want[4].any() == (load > 1)
    for name, a, b in zip(("allocated", "host_used", "host_requested", "host_available", "host_oversubscribed"),
                          (got.allocated, got.host_used, got.host_requested, got.host_available,
                           got.host_oversubscribed), want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
