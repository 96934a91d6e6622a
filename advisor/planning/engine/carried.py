"""What a move carries beyond memory, priced in the ranking as serving prices it (advisor.usecases.estimates):
local disks copied with a live move, and cold migration where a VM's label asks for it. (TLS needs nothing here:
the planner asks for an encrypted pair's costs at its link less TLS's overhead, as the features layer does.)

- Local disks (`CostRequest.disk_used_mib` > 0): memory is predicted at the bandwidth less the disks' measured
  write rate (`memory_bandwidth`: the mirror sends every write beside it), then the mirror's bulk copy, its
  re-copies and final sync are added to every live technique's time, downtime and bytes bound by bound, and a
  mirror that never catches up makes the technique not converge (advisor.physics.disk).
- Cold (`CostRequest.cold`, when the rules allow cold at all): the row is a cold move, its cost the sum of steps
  (advisor.physics.cold) with its local disks copied while the guest is off; chosen whatever the limits, as
  `choose_technique` chooses it when asked for.

A request with none of these (the fields None) is priced exactly as before they existed.
"""

from __future__ import annotations

import numpy as np

from advisor.domain.model import Technique
from advisor.physics.cold import cold_arrays
from advisor.physics.disk import MIN_MEMORY_SHARE, disk_copy_arrays
from advisor.planning.engine.snapshot import BoolArray, FloatArray

__all__ = ["add_disks", "cold_costs", "cold_rows", "memory_bandwidth"]


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


def cold_rows(cold: BoolArray | None, techniques: tuple[Technique, ...]) -> BoolArray | None:
    """The rows to price as cold moves: asked for, and cold allowed by the rules; None when there is none."""
    if cold is None or Technique.COLD not in techniques or not cold.any():
        return None
    return cold


def cold_costs(bandwidth_mib_s: FloatArray, disk_used_mib: FloatArray | None, shutdown_timeout_ms: float
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cold's (total, downtime, MiB) of these rows, (n, 3) each, its local disks copied while the guest is off."""
    disks = np.zeros(bandwidth_mib_s.shape[0]) if disk_used_mib is None else disk_used_mib
    return cold_arrays(bandwidth_mib_s, disks, shutdown_timeout_ms)
