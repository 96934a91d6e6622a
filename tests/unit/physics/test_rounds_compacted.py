"""`simulate` runs each row's rounds in a compiled loop; it must give what the plain round-by-round loop over
arrays of every row gives (kept here as the reference, QEMU's syncs below the budget included), bit for bit, on
random rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.domain.model import Technique
from advisor.physics import DEFAULT_CONSTANTS, TECHNIQUES, AnalyticConstants, analytic_arrays
from advisor.physics.rounds import AnalyticArrays, send_ratios, simulate

# The C library's log1p, which the compiled loop calls: NumPy's own vectorised one (AVX-512) can differ in the last bit.
c_log1p = np.vectorize(math.log1p, otypes=[np.float64])


def reference(code: np.ndarray, first_pass: np.ndarray, ceiling: np.ndarray, dirty: np.ndarray, usable: np.ndarray,
              max_downtime_ms: np.ndarray | float, c: AnalyticConstants,
              sync: np.ndarray | bool = False) -> AnalyticArrays:
    """Every row through every round, masked by whether it is still sending."""
    budget = usable * np.asarray(max_downtime_ms, dtype=np.float64) / 1000.0
    is_auto = code == TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
    is_post = code == TECHNIQUES.index(Technique.POSTCOPY)
    ratio_first, ratio_resend = send_ratios(code, c)
    n = first_pass.shape[0]
    to_send, wire, elapsed, throttle = first_pass.copy(), np.zeros(n), np.zeros(n), np.zeros(n)
    converges, rounds, active = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), ~is_post
    for r in range(1, c.max_rounds + 1):
        if not active.any():
            break
        sent = to_send * (ratio_first if r == 1 else ratio_resend)
        round_s = sent / usable
        wire = np.where(active, wire + sent, wire)
        elapsed = np.where(active, elapsed + round_s, elapsed)
        rounds = np.where(active, r, rounds)
        if r >= 2:
            stepped = np.minimum(c.autoconverge_max, np.where(throttle == 0, c.autoconverge_initial,
                                                              throttle + c.autoconverge_increment))
            throttle = np.where(active & is_auto, stepped, throttle)
        pending = to_send
        dirtied = np.minimum(dirty * (1.0 - throttle) * round_s, ceiling)
        to_send = np.where(active, dirtied, to_send)
        done = active & (dirtied * ratio_resend <= budget)
        # QEMU's syncs below the budget (advisor.physics.rounds._rounds)
        stalled = active & ~done & sync & ((to_send >= pending) | (r == c.max_rounds))
        rate = dirty * (1.0 - throttle)
        with np.errstate(divide="ignore", invalid="ignore"):
            floor = ceiling * (1.0 - usable / ratio_resend / rate)
            settles = stalled & (rate > 0) & (floor < budget / ratio_resend) & (to_send > budget / ratio_resend)
            ratio = np.where(settles, (to_send - budget / ratio_resend) / (budget / ratio_resend - floor), 0.0)
            seconds = np.where(settles, ceiling / rate * c_log1p(ratio), 0.0)
        elapsed = np.where(settles, elapsed + seconds, elapsed)
        wire = np.where(settles, wire + usable * seconds, wire)
        to_send = np.where(settles, budget / ratio_resend, to_send)
        done |= settles
        converges |= done
        active &= ~done
    last = to_send * ratio_resend + c.device_state_mib
    downtime = last / usable * 1000.0 + c.resume_ms
    total = elapsed * 1000.0 + downtime
    wire = wire + last
    post_wire = first_pass * c.postcopy_overhead_ratio + c.device_state_mib
    total = np.where(is_post, post_wire / usable * 1000.0, total)
    downtime = np.where(is_post, c.device_state_mib / usable * 1000.0 + c.resume_ms, downtime)
    wire = np.where(is_post, post_wire, wire)
    rounds = np.where(is_post, 1, rounds)
    return AnalyticArrays(total, downtime, wire, converges | is_post, rounds)


@pytest.mark.parametrize("seed", range(12))
def test_compacted_rounds_equal_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    code = rng.integers(0, len(TECHNIQUES), n)
    memory = rng.choice([256.0, 1024.0, 4096.0, 16384.0], n) * rng.random(n)
    dirty = rng.lognormal(3.0, 2.0, n)
    dirty[rng.random(n) < 0.05] = np.nan
    usable = rng.choice([10.0, 119.2, 1192.0], n)
    limit = rng.choice([30.0, 300.0, 1000.0], n) if seed % 2 else 300.0
    constants = AnalyticConstants(max_rounds=int(rng.integers(0, 5))) if seed % 6 >= 4 else DEFAULT_CONSTANTS
    ceiling = memory * rng.choice([0.01, 0.1, 0.5, 1.0], n)
    sync = rng.random(n) < 0.5 if seed % 3 else bool(seed % 2)
    ours = simulate(code, memory, ceiling, dirty, usable, limit, constants, sync)
    theirs = reference(code, memory, ceiling, dirty, usable, limit, constants, sync)
    for name in ("total_time_ms", "downtime_ms", "transferred_mib", "converges", "rounds"):
        assert np.array_equal(getattr(ours, name), getattr(theirs, name), equal_nan=True), name


def test_a_scalar_bandwidth_and_limit_broadcast_over_the_rows() -> None:
    code = np.arange(len(TECHNIQUES))
    memory = np.full(len(TECHNIQUES), 2048.0)
    a = analytic_arrays(code, memory, np.full(len(TECHNIQUES), 50.0), 100.0, 1000.0)  # type: ignore[arg-type]
    b = analytic_arrays(code, memory, np.full(len(TECHNIQUES), 50.0), np.full(len(TECHNIQUES), 100.0),
                        np.full(len(TECHNIQUES), 1000.0))
    assert np.array_equal(a.total_time_ms, b.total_time_ms) and np.array_equal(a.rounds, b.rounds)
