"""What a move carries beyond memory, priced in the ranking as serving prices it (advisor.usecases.estimates):
local disks copied with a live move, and cold migration where a VM's label asks for it. (TLS needs nothing here:
the planner asks for an encrypted pair's costs at its link less TLS's overhead, as the features layer does.)

- Local disks (`CostRequest.disk_used_mib` > 0): memory is predicted at the bandwidth less the disks' measured
  write rate (`memory_bandwidth`: the mirror sends every write beside it), then the mirror's bulk copy, its
  re-copies and final sync are added to every live technique's time, downtime and bytes bound by bound, and a
  mirror that never catches up makes the technique not converge (advisor.physics.disk).
- Cold (`with_cold`), by planning.technique's `cold_rule`, the one advice's `choose_technique` follows: a row whose
  VM asks for cold (`CostRequest.cold`) is a cold move whatever the limits, where the rules allow cold; where they
  do not, the row meets no limit and says why (a plan refuses the move rather than ignore the label). Where the
  rules allow cold, a row no live technique can take within every limit (a VM that cannot converge live, limits
  only a generous allowed downtime admits) is a cold move when cold meets them all. Its cost is the sum of steps
  (advisor.physics.cold) with its local disks copied while the guest is off.

A request with none of these (the fields None, no row beyond the live techniques' reach) is priced exactly as before
they existed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advisor.physics.cold import cold_arrays
from advisor.physics.disk import MIN_MEMORY_SHARE, disk_copy_arrays
from advisor.planning.engine.estimates import COLD, CostEstimates
from advisor.planning.engine.snapshot import BoolArray, FloatArray
from advisor.planning.technique import TechniqueRules, cold_rule

__all__ = ["add_disks", "memory_bandwidth", "with_cold"]

Steps = tuple[FloatArray, FloatArray, FloatArray]  # a cold move's (total ms, downtime ms, MiB sent), (n, 3) each


def memory_bandwidth(bandwidth_mib_s: FloatArray, disk_used_mib: FloatArray | None,
                     disk_write_rate_mib_s: FloatArray | None) -> FloatArray:
    """The bandwidth memory is predicted at: less the measured write rate of a row with local disks."""
    if disk_used_mib is None or disk_write_rate_mib_s is None:
        return bandwidth_mib_s
    write = np.where((disk_used_mib > 0) & ~np.isnan(disk_write_rate_mib_s), disk_write_rate_mib_s, 0.0)
    left: FloatArray = np.where(write > 0, np.maximum(bandwidth_mib_s - write, bandwidth_mib_s * MIN_MEMORY_SHARE),
                                bandwidth_mib_s)
    return left


def add_disks(disk_used_mib: FloatArray | None, disk_size_mib: FloatArray | None,
              disk_write_rate_mib_s: FloatArray | None, bandwidth_mib_s: FloatArray, total_ms: FloatArray,
              downtime_ms: FloatArray, data_mib: FloatArray, converges: BoolArray, p_converge: FloatArray) -> None:
    """Add the disk copy to each live technique's predictions, shaped (techniques, n, 3) (converges and p_converge
    (techniques, n)), in place, for the rows with local disks in use; `bandwidth_mib_s` is the whole usable one."""
    if disk_used_mib is None or disk_size_mib is None or disk_write_rate_mib_s is None:
        return
    rows = np.flatnonzero(disk_used_mib > 0)
    if not rows.size:
        return
    used, size = disk_used_mib[rows], disk_size_mib[rows]
    write, bandwidth = disk_write_rate_mib_s[rows], bandwidth_mib_s[rows]
    for k in range(total_ms.shape[0]):
        disk = disk_copy_arrays(used, size, write, bandwidth, total_ms[k, rows])
        total_ms[k, rows] += disk.total_ms
        downtime_ms[k, rows] += disk.downtime_ms
        data_mib[k, rows] += disk.sent_mib
        converges[k, rows] &= disk.converges
        p_converge[k, rows] = np.where(disk.converges, p_converge[k, rows], 0.0)


def with_cold(est: CostEstimates, rules: TechniqueRules, live_meets: BoolArray, *, asked: BoolArray | None,
              bandwidth_mib_s: FloatArray, disk_used_mib: FloatArray | None, max_downtime_ms: float,
              deadline_ms: float, steps: Steps | None = None) -> CostEstimates:
    """`est` (the live choice of each row; `live_meets`: some live technique meets every limit) with cold decided
    by `cold_rule` (module docstring). `steps`: cold's cost of every row as priced (by default its steps at the
    row's bandwidth, advisor.physics.cold, computed only where cold may be chosen); limits of 0 mean none."""
    n = len(est)
    asks = np.zeros(n, dtype=bool) if asked is None else np.asarray(asked, dtype=bool)
    if steps is None:
        steps = (np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 3)))
        rows = np.flatnonzero(asks | ~live_meets) if rules.cold_allowed else np.zeros(0, dtype=np.int64)
        if rows.size:
            disks = np.zeros(rows.size) if disk_used_mib is None else disk_used_mib[rows]
            for whole, part in zip(steps, cold_arrays(bandwidth_mib_s[rows], disks,
                                                      rules.cold_shutdown_timeout_ms), strict=True):
                whole[rows] = part
    total, down, _ = steps
    cold_meets = ((max_downtime_ms <= 0) | (down[:, 2] <= max_downtime_ms)) & (
        (deadline_ms <= 0) | (total[:, 2] <= deadline_ms))
    chosen, refused = cold_rule(asks, rules.cold_allowed, live_meets, cold_meets)
    est = replace(est, cold_asked=asks, meets_limits=est.meets_limits & ~refused)
    if not chosen.any():
        return est
    return _as_cold(est, chosen, steps, rules.cold_shutdown_timeout_ms, deadline_ms)


def _as_cold(est: CostEstimates, rows: BoolArray, steps: Steps, shutdown_timeout_ms: float,
             deadline_ms: float) -> CostEstimates:
    """`est` with `rows` cold moves of cost `steps`, meeting the limits (chosen by `cold_rule`: asked for, or alone
    in meeting them), with the request's deadline (0: none) and its shutdown timeout, as planning.technique's
    `choose_technique` sets them; the live techniques' standing kept for explanations."""
    total, down, data = steps
    column = rows[:, None]
    return replace(
        est, technique=np.where(rows, COLD, est.technique), total_ms=np.where(column, total, est.total_ms),
        downtime_ms=np.where(column, down, est.downtime_ms), data_mib=np.where(column, data, est.data_mib),
        converges=est.converges | rows, p_converge=np.where(rows, 1.0, est.p_converge),
        meets_limits=est.meets_limits | rows, postcopy_after_ms=np.where(rows, np.nan, est.postcopy_after_ms),
        shutdown_timeout_ms=np.where(rows, shutdown_timeout_ms, est.shutdown_timeout_ms),
        deadline_ms=np.where(rows, deadline_ms, est.deadline_ms),
    )
