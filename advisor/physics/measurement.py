"""When a dirty-rate measurement is blind.

QEMU's page-sampling dirty rate hashes a sample of pages at the start and at the end of its window and counts the
pages whose content changed. A guest that rewrites memory with the same values (a `memset` loop, many memory
benchmarks, stress-ng's memory stressors) reads 0 MiB/s over 1 s and 4 s, yet every page it writes is dirty for
the migration, which tracks writes, not changes: plain pre-copy of such a guest never converges. A busy guest (its
vCPUs mostly running) whose every window reads about nothing may be such a guest, so its dirty rate is unknown,
not 0: callers then take the "unknown dirty rate" convention (as fast as the link moves, the designed
never-converges case) and say so in the answer's notes.

A guest that computes without writing memory is busy and reads 0 too: it is taken as blind as well. That errs on
the safe side (post-copy or auto-converge instead of plain pre-copy) and the notes say why.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from advisor.physics.rounds import BoolArray, FloatArray

# The share of its vCPUs a guest keeps busy from which a write loop would be expected to show.
BUSY_VCPU_UTILIZATION: Final = 0.5
# A window that saw less than this many MiB change read nothing: page sampling counts in steps of the memory one
# sampled page stands for (2 MiB on a 128 MiB guest with QEMU's default 512 pages per GiB).
ZERO_READING_MIB: Final = 1.0


# A 1 s reading of at most this many MiB is one or two of page sampling's steps (a sampled page stands for 2 MiB):
# with its longer window reading nothing, a busy guest's reading is at the method's floor.
FLOOR_READING_MIB: Final = 4.0


def blind_dirty_rate(dirty_rate_mib_s: FloatArray, window_mib: FloatArray, vcpu_utilization: FloatArray) -> BoolArray:
    """Rows whose dirty-rate reading cannot be trusted: the guest is busy (vCPU utilisation, a share of its
    vCPUs, at least BUSY_VCPU_UTILIZATION; NaN: not measured, never blind) while the 1 s rate x 1 s and the longer
    window's MiB (NaN: not measured) both read less than ZERO_READING_MIB."""
    busy = np.asarray(vcpu_utilization, dtype=np.float64) >= BUSY_VCPU_UTILIZATION
    quiet_1s = np.asarray(dirty_rate_mib_s, dtype=np.float64) * 1.0 < ZERO_READING_MIB
    window = np.asarray(window_mib, dtype=np.float64)
    quiet_window = np.isnan(window) | (window < ZERO_READING_MIB)
    return np.asarray(busy & quiet_1s & quiet_window)


def blind_reading(dirty_rate_mib_s: float, window_mib: float, vcpu_utilization: float) -> bool:
    """`blind_dirty_rate` of one row, without arrays (a served question asks it once): the same comparisons."""
    return (vcpu_utilization >= BUSY_VCPU_UTILIZATION and dirty_rate_mib_s * 1.0 < ZERO_READING_MIB
            and (math.isnan(window_mib) or window_mib < ZERO_READING_MIB))


def at_floor_dirty_rate(dirty_rate_mib_s: FloatArray, window_mib: FloatArray, vcpu_utilization: FloatArray
                        ) -> BoolArray:
    """Rows blind at page sampling's floor, beside `blind_dirty_rate`'s: the guest is busy, its longer window
    (measured) read less than ZERO_READING_MIB, and its 1 s rate read one or two sampled pages (from
    ZERO_READING_MIB to FLOOR_READING_MIB MiB). A guest writing that fast would have shown in the longer window; the
    lab's `stress` runs read so with their vCPUs 53-102% busy and never converged. The physics takes them as blind
    (advisor.features.inputs.InputTable.blind_at_floor); the learned models of schema v4-v7 were trained reading
    them as measured, and still do."""
    busy = np.asarray(vcpu_utilization, dtype=np.float64) >= BUSY_VCPU_UTILIZATION
    rate = np.asarray(dirty_rate_mib_s, dtype=np.float64) * 1.0
    window = np.asarray(window_mib, dtype=np.float64)
    return np.asarray(busy & (window < ZERO_READING_MIB) & (rate >= ZERO_READING_MIB) & (rate <= FLOOR_READING_MIB))


def at_floor_reading(dirty_rate_mib_s: float, window_mib: float, vcpu_utilization: float) -> bool:
    """`at_floor_dirty_rate` of one row, without arrays: the same comparisons."""
    return (vcpu_utilization >= BUSY_VCPU_UTILIZATION
            and window_mib < ZERO_READING_MIB <= dirty_rate_mib_s * 1.0 <= FLOOR_READING_MIB)
