"""Hard guards: where physics decides whether a pre-copy converges, whatever a learned model says.

- KEEPS_UP: a pre-copy without throttling ends only when what the guest dirtied during a round fits the downtime
  budget (usable bandwidth x allowed downtime). If the guest dirties at least as fast as the link sends (its 1 s
  dirty rate, a lower bound of how fast it writes, is at or above the link's effective rate) while its working set
  is more than GUARD_BUDGETS budgets, every round re-sends at least a working set and none ever fits. XBZRLE sends
  re-dirtied pages as deltas and compression shrinks them, so their effective rates are higher. Auto-converge
  throttles the guest until it fits, so it is never ruled out here. An unknown dirty rate (nothing measured it, or
  page sampling was blind) is the designed never-converges case: the inputs take it as the link's rate, and here
  it is taken as the technique's own rate where that is faster (`taken_dirty_rate`).
- DEADLINE: no migration ends before its first pass (what QEMU sends: advisor.physics.first_pass_mib); a deadline
  shorter than that pass cannot be met, whatever the throttle, nor by post-copy, which sends every page once.
- FITS: a round re-sends at most the guest's writable working set, so a working set (measured over the longer
  windows) within the downtime budget is sent in the stop after the first pass: the migration converges, and
  within a deadline that leaves room for the pass. The margin GUARD_BUDGETS absorbs page sampling's noise, and
  the measured working set is taken as the writable one (a guest that rewrites memory with the same values reads
  as idle to page sampling: advisor.physics.measurement says when a reading is blind, and a blind one is no
  working set).

FITS agrees with the working-set physics (`working_set.working_set_arrays`): the physics converges in the stop
after the first pass. KEEPS_UP is more cautious than the physics: QEMU syncs the dirty bitmap whenever what is
pending falls below the budget, so the physics lets a guest that rewrites a measured working set W faster than the
link sends converge where W x (1 - link / rate) fits the budget (`rounds.simulate`), which near rate = link is
almost any W. The lab's outcomes there split: of the 19 lab migrations KEEPS_UP rules out that the physics never
calibrated lets converge, 12 never converged (2026-12-06), and weighing that floor in KEEPS_UP lowered the
uncalibrated physics' recall from 64% to 58% for a point fewer false alarms (`python -m training.few_shot`). So
the guard keeps ruling them out.

Post-copy always ends: of the guards only DEADLINE applies to it. Each guard is a pure function over arrays;
`guard_verdicts` names the one that decides each row (the ones ruling convergence out first), `verdicts` computes it
from a migration's inputs, and `apply_guards` sets the probability of converging to 0 or 1 where one does. """

from __future__ import annotations

import enum
import math
from typing import Any, Final

import numba
import numpy as np

from advisor.domain.model import Technique
from advisor.physics.rounds import (
    DEFAULT_CONSTANTS,
    TECHNIQUES,
    AnalyticConstants,
    BoolArray,
    FloatArray,
    IntArray,
    one_pass_ms,
    row_send_ratios,
    send_ratios,
)

# Physics says 1; the margin absorbs page sampling's noise (a 128 MiB guest's 1 s reading comes in 2 MiB/s steps)
# and the pass's own uncertainty.
GUARD_BUDGETS: Final = 2.0
# A working set below this (MiB) is taken as this, so that an idle guest's ratio to the budget stays finite.
MIN_WORKING_SET_MIB: Final = 0.25
_POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)
_AUTOCONVERGE = TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
_COMPRESS = TECHNIQUES.index(Technique.PRECOPY_COMPRESS)


class Guard(enum.IntEnum):
    """Which guard decides a row (the code in `guard_verdicts`' array)."""

    NONE = 0
    KEEPS_UP = 1  # the guest dirties at least what the link sends, over a working set beyond the budget
    DEADLINE = 2  # the deadline is shorter than one pass over memory
    FITS = 3  # the working set fits the downtime budget

    @property
    def converges(self) -> bool | None:
        """What the guard decides: None where it decides nothing."""
        return {Guard.NONE: None, Guard.FITS: True}.get(self, False)


_NONE, _KEEPS_UP, _DEADLINE, _FITS = (int(g) for g in (Guard.NONE, Guard.KEEPS_UP, Guard.DEADLINE, Guard.FITS))


def effective_rate(code: IntArray, usable_mib_s: FloatArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> FloatArray:
    """How fast re-dirtied memory crosses the link: faster for XBZRLE deltas and compressed pages."""
    _, resend = send_ratios(np.asarray(code, dtype=np.int64), c)
    return np.asarray(usable_mib_s / resend, dtype=np.float64)


def taken_dirty_rate(code: IntArray, dirty_mib_s: FloatArray, usable_mib_s: FloatArray,
                     dirty_known: BoolArray | None, c: AnalyticConstants = DEFAULT_CONSTANTS) -> FloatArray:
    """The dirty rate the guards judge: the measured one, and where it is unknown (`dirty_known` False; None: every
    rate measured) as fast as the technique sends re-dirtied pages. The inputs already take an unknown rate as the
    link's, which is plain pre-copy's rate; compression sends every dirtied page again, shrunk, so a guest that
    keeps its link busy keeps compression's faster rate busy too (on the lab, the 4 compressed pre-copies with a
    blind reading all never converged, 2026-12-06). XBZRLE is left at the link's rate: a blind reading means the
    sampled pages' contents did not change, and XBZRLE sends unchanged contents as near-empty deltas (half of its
    blind migrations converged)."""
    dirty = np.asarray(dirty_mib_s, dtype=np.float64)
    if dirty_known is None:
        return dirty
    code = np.asarray(code, dtype=np.int64)
    unknown = ~np.asarray(dirty_known, dtype=np.bool_) & (code == _COMPRESS)
    return np.asarray(np.where(unknown, np.fmax(dirty, effective_rate(code, usable_mib_s, c)), dirty))


def dirties_faster_than_sent(code: IntArray, dirty_mib_s: FloatArray, usable_mib_s: FloatArray,
                             working_set_over_budget: FloatArray,
                             c: AnalyticConstants = DEFAULT_CONSTANTS) -> BoolArray:
    """KEEPS_UP: pre-copy (plain, XBZRLE or compressed) that never fits its budget (see the module); an unknown
    rate is given as `taken_dirty_rate`."""
    code = np.asarray(code, dtype=np.int64)
    guarded = (code != _POSTCOPY) & (code != _AUTOCONVERGE)
    # `dirty >= rate`, tolerant of a log/exp round trip: an unknown dirty rate is set to exactly the usable
    # bandwidth, the designed "never converges" case, and must not miss by a rounding error.
    keeps_up = np.asarray(dirty_mib_s) >= effective_rate(code, usable_mib_s, c) * (1 - 1e-9)
    return np.asarray(guarded & keeps_up & (np.asarray(working_set_over_budget) > GUARD_BUDGETS))


def deadline_shorter_than_pass(code: IntArray, memory_mib: FloatArray, usable_mib_s: FloatArray,
                               deadline_ms: FloatArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> BoolArray:
    """DEADLINE: a migration whose deadline (0: none) ends before its first pass over memory can, post-copy's too."""
    deadline = np.asarray(deadline_ms, dtype=np.float64)
    return np.asarray((deadline > 0) & (deadline < one_pass_ms(np.asarray(code, dtype=np.int64), memory_mib,
                                                                 usable_mib_s, c)))


def working_set_fits(code: IntArray, memory_mib: FloatArray, usable_mib_s: FloatArray, budget_mib: FloatArray,
                     working_set_mib: FloatArray, dirty_mib_s: FloatArray, max_downtime_ms: FloatArray,
                     deadline_ms: FloatArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> BoolArray:
    """FITS: pre-copy whose measured working set (NaN: not measured), and what the guest dirties in 1 s, fit the
    downtime budget with the margin, with a deadline (0: none) that leaves GUARD_BUDGETS passes and the stop."""
    code = np.asarray(code, dtype=np.int64)
    working_set = np.asarray(working_set_mib, dtype=np.float64)
    seen = np.fmax(working_set, np.asarray(dirty_mib_s, dtype=np.float64) * 1.0)
    fits = ~np.isnan(working_set) & (seen * GUARD_BUDGETS <= np.asarray(budget_mib))
    deadline = np.asarray(deadline_ms, dtype=np.float64)
    room = GUARD_BUDGETS * one_pass_ms(code, memory_mib, usable_mib_s, c) + np.asarray(max_downtime_ms)
    return np.asarray(fits & ((deadline <= 0) | (deadline >= room)) & (code != _POSTCOPY))


def guard_verdicts(keeps_up: BoolArray, short_deadline: BoolArray, fits: BoolArray) -> IntArray:
    """The deciding guard per row (Guard codes): a deadline shorter than a pass first, then a guest that keeps up
    with the link, then a working set that fits."""
    return np.asarray(np.where(short_deadline, Guard.DEADLINE.value, np.where(
        keeps_up, Guard.KEEPS_UP.value, np.where(fits, Guard.FITS.value, Guard.NONE.value))), dtype=np.int64)


def verdicts(code: IntArray, first_pass_mib: FloatArray, usable_mib_s: FloatArray, dirty_mib_s: FloatArray,
             working_set_mib: FloatArray, max_downtime_ms: FloatArray, deadline_ms: FloatArray,
             c: AnalyticConstants = DEFAULT_CONSTANTS, dirty_known: BoolArray | None = None) -> IntArray:
    """The deciding guard of every row from its inputs: the first pass's MiB, the usable bandwidth, the 1 s dirty
    rate, the working set of the longest window (NaN: none beyond 1 s measured), the allowed downtime, the
    deadline (0: none) and whether the dirty rate was measured (None: every one was; see `taken_dirty_rate`).
    What `guard_verdicts` of the three guards above gives, in one compiled loop: the 10 rows of one question
    would pay for some forty array operations."""
    code = np.ascontiguousarray(code, dtype=np.int64)
    n = code.shape[0]

    def rows(a: FloatArray | BoolArray, dtype: type = np.float64) -> Any:
        column: np.ndarray[Any, Any] = np.asarray(a, dtype=dtype)
        return np.ascontiguousarray(column if column.shape == (n,) else np.broadcast_to(column, (n,)))

    known = np.ones(n, dtype=np.bool_) if dirty_known is None else rows(dirty_known, np.bool_)
    out = np.empty(n, dtype=np.int64)
    _verdicts(code, rows(first_pass_mib), rows(usable_mib_s), rows(dirty_mib_s), rows(working_set_mib),
              rows(max_downtime_ms), rows(deadline_ms), known, c.compression_ratio, c.xbzrle_resend_ratio, out)
    return out


@numba.njit(cache=True, nogil=True)
def _nan_max(a: float, b: float) -> float:  # pragma: no cover - compiled
    """np.maximum of two floats: NaN when either is."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a >= b else b


@numba.njit(cache=True, nogil=True)
def _fmax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """np.fmax of two floats: the other when one is NaN."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return a if a >= b else b


@numba.njit(cache=True, nogil=True)
def _verdicts(code: Any, first_pass: Any, usable: Any, dirty: Any, working_set: Any, downtime: Any, deadline: Any,
              known: Any, compression_ratio: float, xbzrle_resend_ratio: float,
              out: Any) -> None:  # pragma: no cover - compiled
    """`verdicts` row by row: the same operations, in the same order, as the array functions above."""
    for i in range(code.shape[0]):
        k = code[i]
        first, resend = row_send_ratios(k, compression_ratio, xbzrle_resend_ratio)
        effective = usable[i] / resend
        rate = dirty[i]
        if not known[i] and k == _COMPRESS:  # taken_dirty_rate
            rate = _fmax(rate, effective)
        budget = _nan_max(usable[i] * downtime[i] / 1000.0, 1e-6)
        over = _nan_max(_fmax(rate * 1.0, working_set[i]), MIN_WORKING_SET_MIB) / budget
        keeps_up = k not in (_POSTCOPY, _AUTOCONVERGE) and rate >= effective * (1 - 1e-9) and over > GUARD_BUDGETS
        one_pass = first_pass[i] * first / usable[i] * 1000.0
        short = deadline[i] > 0 and deadline[i] < one_pass
        seen = _fmax(working_set[i], rate * 1.0)
        room = GUARD_BUDGETS * one_pass + downtime[i]
        fits = (not math.isnan(working_set[i]) and seen * GUARD_BUDGETS <= budget
                and (deadline[i] <= 0 or deadline[i] >= room) and k != _POSTCOPY)
        out[i] = _DEADLINE if short else (_KEEPS_UP if keeps_up else (_FITS if fits else _NONE))


def apply_guards(probability: FloatArray, verdicts: IntArray) -> FloatArray:
    """The probability of converging with the guards' decisions: 0 where one rules it out, 1 where one ensures it."""
    ruled_out = (verdicts == _DEADLINE) | (verdicts == _KEEPS_UP)  # plain ints: an IntEnum costs numpy a conversion
    return np.asarray(np.where(ruled_out, 0.0, np.where(verdicts == _FITS, 1.0, probability)), dtype=np.float64)
