"""Copying the local disks of a live migration: libvirt's block migration (an NBD mirror), before and with memory.

libvirt starts a mirror of every local disk to the target, waits until each is in sync ("ready"), and only then
starts migrating memory; the mirror keeps copying what the guest writes meanwhile, and at the switchover (the
guest paused) it copies the last blocks written before the disks are handed over. So:

- bulk copy: the blocks in use (`used_mib`, what QEMU's mirror reads: a thin disk's unallocated blocks are not
  sent) at the link's bandwidth, then, as pre-copy's rounds for memory, what the guest wrote during each pass is
  copied again: a pass re-copies `min(write rate x pass time, working set)`, the working set of blocks being the
  disks' size at most (a guest cannot rewrite more blocks than its disks have). It converges when the guest writes
  slower than the link copies; otherwise the mirror never catches up and memory never starts;
- memory: migrated while the mirror goes on sending every write, so memory is predicted at the bandwidth less the
  write rate (`memory_bandwidth_mib_s`), and the mirror sends `write rate x memory time` more;
- final sync, in the downtime: the blocks written within the mirror's lag behind the guest (`lag_s`: an
  assumption, 0-1 s, median 0.25 s), over the bandwidth.

Total time is bulk + memory (with its own sync) + final sync; downtime is memory's plus the final sync; bytes add
the bulk copy, its re-copies and the writes during memory. A write rate that was not measured is taken as none for
the median and as `UNKNOWN_WRITE_SHARE` of the bandwidth for the upper bounds, and the notes say so. The intervals
add the disk's own band (write rate 0.8x-1.25x, bandwidth 1x-0.9x, as the analytic model's band) to memory's,
bound by bound. The figures are the physics alone: no migration with local disks has been measured in the lab yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from advisor.domain.model import Interval, MigrationCost, MigrationInputs

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Below this a pass is the mirror's last before it reports ready.
READY_S = 0.05
MAX_PASSES = 50
# The mirror's lag behind the guest's writes at the switchover: (low, median, high) seconds (an assumption).
LAG_S = (0.0, 0.25, 1.0)
# An unmeasured write rate, for the upper bounds: this share of the bandwidth.
UNKNOWN_WRITE_SHARE = 0.1
# Memory is never predicted at less than this share of the link while the mirror runs.
MIN_MEMORY_SHARE = 0.05
# The band's cases, (write rate, bandwidth) factors of the easy, expected and hard case.
BAND = ((0.8, 1.0), (1.0, 1.0), (1.25, 0.9))


@dataclass(frozen=True)
class BulkCopy:
    """The mirror's bulk phase: how long until in sync, what it sent, in how many passes, whether it got there."""

    time_ms: float
    sent_mib: float
    passes: int
    converges: bool


def bulk_copy(used_mib: float, size_mib: float, write_mib_s: float, bandwidth_mib_s: float) -> BulkCopy:
    """The bulk copy and its re-copies until the mirror is in sync (module docstring); raises ValueError on a
    negative or non-finite figure or a bandwidth that is not positive."""
    for name, value in (("used_mib", used_mib), ("size_mib", size_mib), ("write_mib_s", write_mib_s)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if not math.isfinite(bandwidth_mib_s) or bandwidth_mib_s <= 0:
        raise ValueError(f"bandwidth_mib_s must be positive, got {bandwidth_mib_s}")
    working_set = max(size_mib, used_mib)
    left, time_s, sent = used_mib, 0.0, 0.0
    for passes in range(1, MAX_PASSES + 1):
        pass_s = left / bandwidth_mib_s
        time_s += pass_s
        sent += left
        written = min(write_mib_s * pass_s, working_set)
        if written / bandwidth_mib_s <= READY_S:  # the last few blocks: copied as the mirror reports ready
            return BulkCopy((time_s + written / bandwidth_mib_s) * 1000.0, sent + written, passes, True)
        left = written
    return BulkCopy(time_s * 1000.0, sent, MAX_PASSES, False)


def memory_bandwidth_mib_s(bandwidth_mib_s: float, write_mib_s: float) -> float:
    """What memory is migrated at while the mirror sends every write: the bandwidth less the write rate, at least
    MIN_MEMORY_SHARE of it."""
    return max(bandwidth_mib_s - write_mib_s, bandwidth_mib_s * MIN_MEMORY_SHARE)


@dataclass(frozen=True)
class DiskCopy:
    """The disk part of a prediction, added to memory's bound by bound."""

    total_ms: tuple[float, float, float]
    downtime_ms: tuple[float, float, float]
    sent_mib: tuple[float, float, float]
    converges: bool
    note: str


def disk_copy(inputs: MigrationInputs, memory_total_ms: Interval) -> DiskCopy:
    """The disk part of a live migration of `inputs` whose memory part takes `memory_total_ms`."""
    bandwidth = inputs.usable_bandwidth_mib_s
    known = inputs.disk_write_rate_mib_s is not None
    write = inputs.disk_write_rate_mib_s if inputs.disk_write_rate_mib_s is not None else 0.0
    cases = []
    for (w, b), lag, memory_ms in zip(BAND, LAG_S, (memory_total_ms.low, memory_total_ms.median,
                                                     memory_total_ms.high), strict=True):
        rate = write * w if known else (0.0 if w <= 1.0 else bandwidth * UNKNOWN_WRITE_SHARE)
        link = bandwidth * b
        bulk = bulk_copy(inputs.local_disk_used_mib, inputs.local_disk_size_mib, rate, link)
        final_mib = rate * lag
        final_ms = final_mib / link * 1000.0
        cases.append((bulk, bulk.time_ms + final_ms, final_ms,
                      bulk.sent_mib + rate * memory_ms / 1000.0 + final_mib))
    mid = cases[1][0]
    note = (f"local disks: {inputs.local_disk_used_mib:.0f} MiB in use copied first at {bandwidth:.1f} MiB/s "
            f"({mid.time_ms / 1000:.1f} s, {mid.passes} pass{'es' if mid.passes > 1 else ''}), then every write "
            "mirrored while memory moves")
    if not known:
        note += "; write rate not measured: none assumed (upper bounds: " \
                f"{bandwidth * UNKNOWN_WRITE_SHARE:.1f} MiB/s)"
    elif not mid.converges:
        note += (f"; the guest writes {write:.1f} MiB/s, as fast as the link copies: the mirror never catches up "
                 "and memory never starts")
    else:
        note += f" (written at {write:.1f} MiB/s)"
    return DiskCopy(_bounds(c[1] for c in cases), _bounds(c[2] for c in cases), _bounds(c[3] for c in cases),
                    mid.converges, note)


@dataclass(frozen=True)
class DiskCopyArrays:
    """`disk_copy` over arrays, one row per move: (n, 3) (low, median, high) columns and converges (n,)."""

    total_ms: FloatArray
    downtime_ms: FloatArray
    sent_mib: FloatArray
    converges: BoolArray


def bulk_copy_arrays(used_mib: FloatArray, size_mib: FloatArray, write_mib_s: FloatArray,
                     bandwidth_mib_s: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
    """`bulk_copy` over arrays (inputs already valid, as the planner's): time ms, MiB sent, converges."""
    working_set = np.maximum(size_mib, used_mib)
    left = np.asarray(used_mib, np.float64).copy()
    time_s, sent = np.zeros_like(left), np.zeros_like(left)
    done, converges = np.zeros(left.shape, dtype=bool), np.zeros(left.shape, dtype=bool)
    for _ in range(MAX_PASSES):
        active = ~done
        pass_s = left / bandwidth_mib_s
        time_s += np.where(active, pass_s, 0.0)
        sent += np.where(active, left, 0.0)
        written = np.minimum(write_mib_s * pass_s, working_set)
        ready = active & (written / bandwidth_mib_s <= READY_S)
        time_s += np.where(ready, written / bandwidth_mib_s, 0.0)
        sent += np.where(ready, written, 0.0)
        converges |= ready
        done |= ready
        left = np.where(active, written, left)
        if done.all():
            break
    return time_s * 1000.0, sent, converges


def disk_copy_arrays(used_mib: FloatArray, size_mib: FloatArray, write_mib_s: FloatArray,
                     bandwidth_mib_s: FloatArray, memory_total_ms: FloatArray) -> DiskCopyArrays:
    """`disk_copy` of many moves (a write rate of NaN: not measured), their memory parts taking `memory_total_ms`
    ((n, 3)); row for row the same figures, without the note. For the planner's ranking."""
    known = ~np.isnan(write_mib_s)
    write = np.where(known, write_mib_s, 0.0)
    total, down, sent = [], [], []
    mid_converges = np.zeros(np.shape(used_mib), dtype=bool)
    for case, ((w, b), lag) in enumerate(zip(BAND, LAG_S, strict=True)):
        rate = np.where(known, write * w, 0.0 if w <= 1.0 else bandwidth_mib_s * UNKNOWN_WRITE_SHARE)
        link = bandwidth_mib_s * b
        time_ms, bulk_sent, converges = bulk_copy_arrays(used_mib, size_mib, rate, link)
        final_mib = rate * lag
        final_ms = final_mib / link * 1000.0
        total.append(time_ms + final_ms)
        down.append(final_ms)
        sent.append(bulk_sent + rate * memory_total_ms[:, case] / 1000.0 + final_mib)
        if case == 1:
            mid_converges = converges
    return DiskCopyArrays(np.sort(np.stack(total, axis=1), axis=1), np.sort(np.stack(down, axis=1), axis=1),
                          np.sort(np.stack(sent, axis=1), axis=1), mid_converges)


def _bounds(values: Iterable[float]) -> tuple[float, float, float]:
    low, median, high = sorted(values)
    return low, median, high


def memory_part(inputs: MigrationInputs) -> MigrationInputs:
    """The inputs memory is predicted from while the mirror runs: the bandwidth (and its cap) less the disks'
    measured write rate; unchanged without local disks."""
    if not inputs.local_disk_used_mib or not inputs.disk_write_rate_mib_s:
        return inputs
    write = inputs.disk_write_rate_mib_s
    return replace(inputs, bandwidth_mib_s=memory_bandwidth_mib_s(inputs.bandwidth_mib_s, write),
                   max_bandwidth_mib_s=memory_bandwidth_mib_s(inputs.max_bandwidth_mib_s, write))


def with_disk_copy(memory: MigrationCost, inputs: MigrationInputs) -> MigrationCost:
    """`memory` (predicted from `memory_part(inputs)`) with the local disks' copy added: total, downtime and bytes
    bound by bound, convergence and a note (module docstring). A cost without local disks is returned as it is."""
    if not inputs.local_disk_used_mib or not memory.technique.is_live:
        return memory
    disk = disk_copy(inputs, memory.total_time_ms)

    def plus(quantity: Interval, extra: tuple[float, float, float]) -> Interval:
        return Interval(quantity.low + extra[0], quantity.median + extra[1], quantity.high + extra[2])

    return MigrationCost(
        memory.technique, plus(memory.total_time_ms, disk.total_ms), plus(memory.downtime_ms, disk.downtime_ms),
        plus(memory.transferred_mib, disk.sent_mib), memory.converges and disk.converges, memory.model,
        (*memory.notes, disk.note),
        memory.converge_probability if disk.converges else 0.0,
    )
