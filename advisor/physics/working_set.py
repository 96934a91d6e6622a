"""Pre-copy with a writable working set (a hot/cold split of memory) and the first pass QEMU really sends: the
physics behind the served and learned models (advisor.ml.cost_features reads it as features, advisor.ml.profiles
fits a host's parameters on it).

- The first pass sends the non-zero pages: QEMU sends a zero page as a flag. What every host can measure is the
  guest's RAM and its memory in use as the guest reports it, RAM - MemAvailable (the balloon's `current - usable`;
  the CSV column `memory_used_mib`), which counts the kernel's own reservation outside MemTotal (35 MiB of a
  128 MiB lab guest, 38 MiB of a 256 MiB one) as QEMU does. On the lab's 304 migrations the non-zero pages QEMU
  found were that plus 6-8 MiB (median; 9%) whatever the RAM (128 or 256 MiB) and working set (0-96 MiB): pages
  the guest freed but that still hold data (the unpacked boot image, freed init memory) and page cache the kernel
  counts as available. Those a host cannot see before migrating, so the rule sends RAM - MemAvailable, at most RAM
  (`first_pass_mib`); a caller that measured the non-zero or touched pages gives them (`nonzero_memory_mib`) and
  they are sent instead; a host profile fits the rest (advisor.ml.profiles, `sent_memory_factor`). Memory in use
  unknown: all of the RAM. (Read as MemTotal - MemAvailable, an idle 128 MiB guest's 26 MiB sent 87 MiB: that
  reading leaves out the reservation, and is not this input.)
- What every host also measures, without the guest's help, is what the guest's QEMU process holds resident
  (libvirt's memoryStats `rss`): every page the guest has touched, freed ones included, plus QEMU's own memory.
  Less that (`QEMU_OWN_RESIDENT_MIB`) it is the better estimate, and `first_pass_mib` takes it where it is
  measured: on the lab's 335 migrations that recorded both (guests of 256 MiB-1 GiB that had run other programs),
  the non-zero pages QEMU found were 1.61x the memory in use (median; p10 1.05, p90 2.68; median APE 61%) and
  0.98x resident less 90 MiB (p10 0.62, p90 1.08; median APE 8%). Resident less QEMU's own errs high (a touched
  page the guest zeroed is sent as a flag; QEMU's own memory grows with what it did before), so it is bounded by
  twice the memory in use (`RESIDENT_OVER_IN_USE`), and below by the memory in use where measured (the lab's QEMU
  holds 90 MiB of its own under TCG; one that holds less would read a guest smaller than it says it is); a host
  that preallocates guest memory makes it all of the RAM. These figures are of one rig's migrations, and the
  bounds were chosen on them.
- A round re-sends `min(working set, rate x round time)`: only the hot pages are rewritten, the cold ones are sent
  once (the analytic model, `rounds.analytic_arrays`, lets a 40 MiB/s guest dirty 400 MiB during a 10 s round
  even when it rewrites the same 16 MiB). The working set is the longest window measured
  (`longest_window_working_set`): the 4 s page-sampling window's MiB (rate x 4 s), or the 1 s rate x 1 s when it
  reads more; with no window longer than 1 s it is unknown and all of memory may be rewritten.

- QEMU syncs the dirty bitmap whenever what is pending falls below the budget (bandwidth x allowed downtime), so
  a guest rewriting a measured working set W faster than the link sends leaves W x (1 - link / rate) pending, not
  W, and pre-copy ends where that fits the budget (`rounds.simulate`, `sync_below_budget`: a lab migration of 48 MiB
  rewritten at 64 MiB/s over a 32 MiB/s cap with 1 s allowed ended in 6.6 s, 7.3 s by this rule; after whole rounds
  only, it never ends). With no working set measured all of memory may be rewritten, and nothing settles so.

Everything else is the analytic model's: QEMU's stop rule, auto-converge's throttle steps, XBZRLE and compression
ratios, post-copy as one pass (over the first pass's pages).
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from advisor.domain.validation import MAX_QEMU_OWN_MIB
from advisor.physics.rounds import (
    DEFAULT_CONSTANTS,
    AnalyticArrays,
    AnalyticConstants,
    BoolArray,
    FloatArray,
    IntArray,
    simulate,
)

# What QEMU's process holds resident beyond the guest's pages, MiB: the lab's QEMU under TCG (its translated code
# included) held 90 MiB more than the non-zero pages it then sent (median of 335 migrations; 92, 92 and 104 MiB for
# guests of 256, 512 and 1,024 MiB). QEMU under KVM keeps no translated code: this errs high there, by tens of MiB.
QEMU_OWN_RESIDENT_MIB = 90.0
# Resident memory is the guest's pages only in part: QEMU's own varies (its translated code, the buffers of an
# earlier migration) and a page the guest zeroed stays resident. Where it reads more than this many times the memory
# in use, the first pass is taken as this many times that: on the lab's 335 migrations, non-zero pages over the
# estimate p10-p90 0.62-1.08 without the bound, 0.77-1.35 with it (mean APE 27% -> 18%); few-shot time MAPE, 20
# draws, k = 0: 39% -> 37%, k = 10: 35% -> 33% (memory in use alone: 42%, 34%).
RESIDENT_OVER_IN_USE = 2.0


@overload
def resident_fits_vm(resident_mib: float, vm_memory_mib: float) -> bool: ...
@overload
def resident_fits_vm(resident_mib: FloatArray, vm_memory_mib: FloatArray) -> BoolArray: ...
def resident_fits_vm(resident_mib: Any, vm_memory_mib: Any) -> Any:
    """Whether a resident reading (MiB, per row for arrays) can be of the VM as it is: above 0 and at most its
    memory plus the most QEMU's own can be (`MAX_QEMU_OWN_MIB`); above that, it was read before the VM was made
    smaller. NaN: no."""
    return (resident_mib > 0) & (resident_mib <= vm_memory_mib + MAX_QEMU_OWN_MIB)


def resident_guest_mib(resident_mib: FloatArray) -> FloatArray:
    """The guest pages QEMU's process holds: what it holds resident less its own (NaN: not measured)."""
    return np.asarray(np.maximum(np.asarray(resident_mib, dtype=np.float64) - QEMU_OWN_RESIDENT_MIB, 0.0),
                      dtype=np.float64)


def first_pass_mib(memory_mib: FloatArray, ram_mib: FloatArray, nonzero_mib: FloatArray,
                   resident_mib: FloatArray | None = None) -> FloatArray:
    """What the first pass sends per row: the measured non-zero pages where given (NaN: not measured), else the
    guest pages resident on the host (`resident_guest_mib`, where measured; at least the memory in use where that
    was measured, at most `RESIDENT_OVER_IN_USE` times it), else the memory in use (RAM - MemAvailable where
    measured; the RAM where not), never more than the RAM (NaN: unknown, then no bound). See the module for the
    rule and the lab's figures behind it."""
    memory = np.asarray(memory_mib, dtype=np.float64)
    if resident_mib is not None:
        touched = resident_guest_mib(resident_mib)
        ram = np.asarray(ram_mib, dtype=np.float64)
        in_use = np.where(memory >= ram, 0.0, memory)  # memory in use unknown (all of the RAM): no floor
        memory = np.where(np.isnan(touched), memory,
                          np.clip(touched, in_use, RESIDENT_OVER_IN_USE * memory))
    nonzero = np.asarray(nonzero_mib, dtype=np.float64)
    sent = np.where(np.isnan(nonzero), memory, np.maximum(nonzero, 0.0))
    return np.asarray(np.fmin(sent, np.asarray(ram_mib, dtype=np.float64)), dtype=np.float64)


def longest_window_working_set(dirty_rate_mib_s: FloatArray, window_mib: FloatArray) -> FloatArray:
    """The writable working set: what the longest window measured saw, the longer window's MiB (NaN: none
    measured, then the working set is unknown) or the 1 s rate x 1 s where that reads more."""
    window = np.asarray(window_mib, dtype=np.float64)
    seen = np.fmax(window, np.asarray(dirty_rate_mib_s, dtype=np.float64) * 1.0)
    return np.asarray(np.where(np.isnan(window), np.nan, seen), dtype=np.float64)


def working_set_arrays(
    technique_code: IntArray,
    memory_mib: FloatArray,
    working_set_mib: FloatArray,
    dirty_rate_mib_s: FloatArray,
    usable_mib_s: FloatArray,
    max_downtime_ms: FloatArray | float,
    nonzero_mib: FloatArray | None = None,
    c: AnalyticConstants = DEFAULT_CONSTANTS,
    sync_below_budget: bool = True,
) -> AnalyticArrays:
    """Every row's migration with its working set (NaN: unknown, then all of memory may be rewritten, as in the
    analytic model) and the pages of its first pass (None or NaN: `memory_mib`); `sync_below_budget` False checks
    the stop only after whole rounds (the physics schema v4's features were trained on)."""
    memory = np.asarray(memory_mib, dtype=np.float64)
    first = memory if nonzero_mib is None else np.maximum(np.asarray(nonzero_mib, dtype=np.float64), 0.0)
    first = np.where(np.isnan(first), memory, first)
    working_set = np.asarray(working_set_mib, dtype=np.float64)
    hot = np.fmin(working_set, np.fmax(memory, first))
    return simulate(technique_code, first, hot, dirty_rate_mib_s, usable_mib_s, max_downtime_ms, c,
                    sync_below_budget & ~np.isnan(working_set))
