"""Copying local disks with a live move, as tables: the mirror's bulk copy and re-copies, the bandwidth memory is
left, and the disk part added to memory's cost bound by bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.physics import bulk_copy, memory_part, with_disk_copy
from advisor.physics.disk import MAX_PASSES, disk_copy, disk_copy_arrays

# (used MiB, size MiB, write MiB/s, bandwidth MiB/s) -> (time ms, sent MiB, passes, converges)
BULK = [
    # nothing written: one pass of the blocks in use
    ((1000.0, 2000.0, 0.0, 100.0), (10_000.0, 1000.0, 1, True)),
    # an empty disk: nothing to send
    ((0.0, 2000.0, 5.0, 100.0), (0.0, 0.0, 1, True)),
    # half the link written: 1000 / (100 - 50) = 20 s, the passes halving until one is under 50 ms (3.9 MiB)
    ((1000.0, 2000.0, 50.0, 100.0), (19_960.9375 + 39.0625, 2000.0, 8, True)),
    # a light writer: 1000 / (100 - 1) = 10.1 s
    ((1000.0, 1000.0, 1.0, 100.0), (10_101.0, 1010.1, 2, True)),
    # written as fast as copied: the mirror never catches up
    ((1000.0, 2000.0, 100.0, 100.0), (MAX_PASSES * 10_000.0, MAX_PASSES * 1000.0, MAX_PASSES, False)),
    # faster than copied: each pass re-copies the whole disk (its blocks are all there is to rewrite)
    ((500.0, 1000.0, 400.0, 100.0), (5000.0 + (MAX_PASSES - 1) * 10_000.0, 500.0 + (MAX_PASSES - 1) * 1000.0,
                                     MAX_PASSES, False)),
]


@pytest.mark.parametrize(("given", "expected"), BULK, ids=[str(g) for g, _ in BULK])
def test_the_bulk_copy_and_its_re_copies(given: tuple[float, float, float, float],
                                         expected: tuple[float, float, int, bool]) -> None:
    got = bulk_copy(*given)
    time_ms, sent, passes, converges = expected
    assert got.time_ms == pytest.approx(time_ms, rel=2e-3)
    assert got.sent_mib == pytest.approx(sent, rel=2e-3)
    assert (got.passes, got.converges) == (passes, converges)


@pytest.mark.parametrize(("given", "field"), [
    ((-1.0, 10.0, 0.0, 100.0), "used_mib"), ((1.0, math.nan, 0.0, 100.0), "size_mib"),
    ((1.0, 10.0, math.inf, 100.0), "write_mib_s"), ((1.0, 10.0, 0.0, 0.0), "bandwidth_mib_s"),
])
def test_a_bulk_copy_refuses_figures_it_cannot_take(given: tuple[float, float, float, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        bulk_copy(*given)


def inputs(**kw: object) -> MigrationInputs:
    base: dict[str, object] = {"memory_mib": 1024.0, "dirty_rate_mib_s": 5.0, "bandwidth_mib_s": 100.0,
                               "max_bandwidth_mib_s": 120.0, "local_disk_used_mib": 1000.0,
                               "local_disk_size_mib": 2000.0, "disk_write_rate_mib_s": 0.0}
    return MigrationInputs(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "bandwidth", "cap"), [
    (inputs(disk_write_rate_mib_s=20.0), 80.0, 100.0),  # the mirror sends every write beside memory
    (inputs(disk_write_rate_mib_s=None), 100.0, 120.0),  # not measured: memory as it is (the note says so)
    (inputs(disk_write_rate_mib_s=300.0), 5.0, 6.0),  # never below 5% of the link
    (inputs(local_disk_used_mib=0.0, disk_write_rate_mib_s=20.0), 100.0, 120.0),  # nothing local: unchanged
])
def test_memory_moves_at_what_the_mirror_leaves(given: MigrationInputs, bandwidth: float, cap: float) -> None:
    memory = memory_part(given)
    assert (memory.bandwidth_mib_s, memory.max_bandwidth_mib_s) == (bandwidth, cap)


MEMORY = MigrationCost(Technique.PRECOPY, Interval(1000, 2000, 3000), Interval(10, 20, 30), Interval(100, 128, 150),
                       True, ModelRef("m", "1"), ("4 pre-copy rounds",), 0.9)


@pytest.mark.parametrize(("given", "total", "downtime", "sent", "converges"), [
    # nothing written: the used blocks once, at 100 MiB/s (90 for the upper bound), nothing in the downtime
    (inputs(), (11_000, 12_000, 3000 + 1000 / 90 * 1000), (10, 20, 30), (1100, 1128, 1150), True),
    # 10 MiB/s written: the bulk phase 1000 / (100 - 10) = 11.1 s at the median; while memory moves for 2 s, 20 MiB
    # more; 10 x 0.25 s = 2.5 MiB in the final sync (25 ms)
    (inputs(disk_write_rate_mib_s=10.0),
     (1000 + 1000 / 92 * 1000, 2000 + 11_111 + 25, 3000 + 1000 / (90 - 12.5) * 1000 + 139),
     (10, 45, 30 + 139), (100 + 1000 / 0.92 + 8, 128 + 1111 + 20 + 2.5, 150 + 1000 * 90 / 77.5 + 37.5 + 12.5), True),
    # not measured: none for the median, 10% of the link for the upper bound
    (inputs(disk_write_rate_mib_s=None), (11_000, 12_000, 3000 + 1000 / (90 - 10) * 1000 + 111),
     (10, 20, 30 + 111), (1100, 1128, 150 + 1000 * 90 / 80 + 30 + 10), True),
    # written as fast as copied: it does not converge
    (inputs(disk_write_rate_mib_s=100.0), None, None, None, False),
])
def test_the_disk_part_is_added_to_memory_bound_by_bound(given: MigrationInputs, total: tuple[float, ...] | None,
                                                         downtime: tuple[float, ...] | None,
                                                         sent: tuple[float, ...] | None, converges: bool) -> None:
    cost = with_disk_copy(MEMORY, given)
    assert cost.converges == converges and cost.technique is Technique.PRECOPY and cost.model == MEMORY.model
    assert cost.notes[0] == "4 pre-copy rounds" and cost.notes[-1].startswith("local disks: 1000 MiB in use copied")
    if not converges:
        assert cost.converge_probability == 0.0 and "never catches up" in cost.notes[-1]
        return
    assert cost.converge_probability == 0.9
    for got, want in ((cost.total_time_ms, total), (cost.downtime_ms, downtime), (cost.transferred_mib, sent)):
        assert want is not None
        assert (got.low, got.median, got.high) == pytest.approx(want, rel=0.01)
    if given.disk_write_rate_mib_s is None:
        assert "write rate not measured" in cost.notes[-1]


def test_a_move_without_local_disks_or_a_cold_one_is_left_alone() -> None:
    assert with_disk_copy(MEMORY, inputs(local_disk_used_mib=0.0)) is MEMORY
    cold = MigrationCost(Technique.COLD, Interval(1, 2, 3), Interval(1, 2, 3), Interval.exact(0.002), True,
                         ModelRef("cold-steps", "1.0.0"))
    assert with_disk_copy(cold, inputs()) is cold


def test_the_arrays_give_row_for_row_the_scalar_copy() -> None:
    """disk_copy_arrays (the planner's) against disk_copy, over writers light, heavy, unmeasured and too fast."""
    rows = [(1000.0, 2000.0, 0.0), (1000.0, 2000.0, 50.0), (8192.0, 16384.0, None), (500.0, 1000.0, 400.0),
            (1000.0, 2000.0, 100.0), (3.0, 10.0, 1.0)]
    memory = Interval(2000.0, 3000.0, 5000.0)
    got = disk_copy_arrays(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                           np.array([np.nan if r[2] is None else r[2] for r in rows]), np.full(len(rows), 100.0),
                           np.tile([memory.low, memory.median, memory.high], (len(rows), 1)))
    for k, (used, size, write) in enumerate(rows):
        want = disk_copy(MigrationInputs(1024.0, 1.0, 100.0, 100.0, local_disk_used_mib=used,
                                         local_disk_size_mib=size, disk_write_rate_mib_s=write), memory)
        assert got.total_ms[k].tolist() == pytest.approx(list(want.total_ms), rel=1e-12)
        assert got.downtime_ms[k].tolist() == pytest.approx(list(want.downtime_ms), rel=1e-12)
        assert got.sent_mib[k].tolist() == pytest.approx(list(want.sent_mib), rel=1e-12)
        assert bool(got.converges[k]) is want.converges
