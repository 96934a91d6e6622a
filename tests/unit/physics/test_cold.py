"""Cold migration's cost: a sum of steps, the shutdown bounded by its timeout, the whole of it downtime but the
definition written while the guest runs, and only the definition on the wire."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.physics import COLD_MODEL, ColdConstants, cold_cost
from advisor.physics.cold import cold_arrays, shutdown_ms

INPUTS = MigrationInputs(memory_mib=4096, dirty_rate_mib_s=500, bandwidth_mib_s=100, max_bandwidth_mib_s=100)
STEPS = ColdConstants(define_ms=(10, 20, 30), graceful_shutdown_ms=(1000, 5000, math.inf), destroy_ms=(100, 200, 300),
                      start_ms=(400, 500, 600), definition_mib=0.004)


@pytest.mark.parametrize(("graceful", "timeout", "destroy", "expected"), [
    (5000, 60_000, 200, 5000),     # shuts down by itself
    (5000, 2000, 200, 2200),       # forced off at the timeout
    (math.inf, 2000, 200, 2200),   # never answers the power button
    (1000, 0, 200, 200),           # no grace at all
])
def test_the_shutdown_never_outlasts_its_timeout_and_the_destroy(graceful: float, timeout: float, destroy: float,
                                                                   expected: float) -> None:
    assert shutdown_ms(graceful, timeout, destroy) == expected


@pytest.mark.parametrize(("timeout_ms", "downtime"), [
    # (low, median, high): each step's bound summed, the graceful shutdown cut at the timeout
    (60_000, (1000 + 400, 5000 + 500, 60_000 + 300 + 600)),
    (3000, (1000 + 400, 3000 + 200 + 500, 3000 + 300 + 600)),
    (500, (500 + 100 + 400, 500 + 200 + 500, 500 + 300 + 600)),
])
def test_cost_is_the_sum_of_its_steps(timeout_ms: float, downtime: tuple[float, float, float]) -> None:
    cost = cold_cost(INPUTS, timeout_ms, constants=STEPS)
    assert cost.technique is Technique.COLD and cost.model == COLD_MODEL and cost.converges
    assert (cost.downtime_ms.low, cost.downtime_ms.median, cost.downtime_ms.high) == downtime
    # the definition moves while the guest still runs: the only time that is not downtime
    total = cost.total_time_ms
    assert (total.low, total.median, total.high) == tuple(d + t for d, t in zip(downtime, (10, 20, 30), strict=True))
    assert cost.transferred_mib.median == 0.004
    assert any("wide intervals" in n for n in cost.notes) and any("no disk copied" in n for n in cost.notes)


def test_memory_and_dirty_rate_change_nothing_but_local_disks_are_copied_at_the_bandwidth() -> None:
    idle = MigrationInputs(memory_mib=128, dirty_rate_mib_s=0, bandwidth_mib_s=100, max_bandwidth_mib_s=100)
    assert cold_cost(idle, 60_000, constants=STEPS) == cold_cost(INPUTS, 60_000, constants=STEPS)
    with_disk = cold_cost(INPUTS, 60_000, local_disk_mib=1000, constants=STEPS)
    plain = cold_cost(INPUTS, 60_000, constants=STEPS)
    assert with_disk.downtime_ms.median - plain.downtime_ms.median == pytest.approx(10_000)  # 1000 MiB at 100 MiB/s
    assert with_disk.transferred_mib.median == pytest.approx(1000.004)
    assert not any("no disk copied" in n for n in with_disk.notes)


def test_the_defaults_put_a_cold_move_in_seconds_bounded_by_the_timeout() -> None:
    cost = cold_cost(INPUTS, 60_000)
    assert 1_000 < cost.downtime_ms.median < 60_000 < cost.downtime_ms.high < 70_000


@pytest.mark.parametrize(("timeout", "disk"), [(-1, 0), (math.nan, 0), (1000, -5), (1000, math.inf)])
def test_bad_input_is_refused(timeout: float, disk: float) -> None:
    with pytest.raises(ValueError, match="finite non-negative"):
        cold_cost(INPUTS, timeout, local_disk_mib=disk)


@pytest.mark.parametrize("timeout_ms", [0.0, 5_000.0, 60_000.0])
def test_the_arrays_give_row_for_row_the_steps(timeout_ms: float) -> None:
    bandwidth, disks = np.array([100.0, 10.0, 1000.0]), np.array([0.0, 1000.0, 64.0])
    total, downtime, sent = cold_arrays(bandwidth, disks, timeout_ms, STEPS)
    for k in range(3):
        want = cold_cost(MigrationInputs(1024.0, 1.0, float(bandwidth[k]), float(bandwidth[k])), timeout_ms,
                         local_disk_mib=float(disks[k]), constants=STEPS)
        for got, interval in ((total, want.total_time_ms), (downtime, want.downtime_ms), (sent, want.transferred_mib)):
            assert got[k].tolist() == pytest.approx([interval.low, interval.median, interval.high])
