"""The hard guards as tables: each row a case, what the guard decides, and why."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.physics import (
    Guard,
    apply_guards,
    deadline_shorter_than_pass,
    dirties_faster_than_sent,
    guard_verdicts,
    one_pass_ms,
    working_set_arrays,
    working_set_fits,
)
from advisor.physics.guards import verdicts
from tests.unit.physics.grid import AUTO, COMPRESS, POST, XBZRLE, P


def col(values: list[float] | tuple[float, ...]) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# (technique, memory MiB, usable MiB/s, deadline ms, cannot converge, why)
DEADLINES = [
    (P, 32768.0, 25.0, 600_000.0, True, "32 GiB at a 25 MiB/s cap: one pass takes 1,311 s, the deadline is 600 s"),
    (AUTO, 32768.0, 25.0, 600_000.0, True, "throttling the guest does not shorten the first pass"),
    (XBZRLE, 32768.0, 25.0, 600_000.0, True, "XBZRLE shrinks re-sent pages, not the first pass"),
    (COMPRESS, 32768.0, 25.0, 600_000.0, True, "compressed, the first pass still takes 865 s"),
    (COMPRESS, 32768.0, 25.0, 900_000.0, False, "compressed, 865 s fit 900 s"),
    (P, 32768.0, 25.0, 1_400_000.0, False, "the deadline leaves room for the pass"),
    (P, 32768.0, 25.0, 0.0, False, "no deadline: it ends when it ends"),
    (POST, 32768.0, 25.0, 600_000.0, True, "post-copy sends every page once: 1,311 s do not fit 600 s either"),
    (POST, 32768.0, 25.0, 1_400_000.0, False, "post-copy's pass fits the deadline"),
    (P, 1024.0, 100.0, 10_000.0, True, "10.24 s of pass against a 10 s deadline"),
    (P, 1024.0, 100.0, 10_240.0, False, "exactly one pass: not shorter"),
]


@pytest.mark.parametrize(("code", "memory", "usable", "deadline", "cannot", "why"), DEADLINES)
def test_a_deadline_shorter_than_one_pass_cannot_converge(code: int, memory: float, usable: float, deadline: float,
                                                          cannot: bool, why: str) -> None:
    verdict = deadline_shorter_than_pass(np.array([code]), col([memory]), col([usable]), col([deadline]))
    assert bool(verdict[0]) is cannot, why


def test_one_pass_of_the_32_gib_vm_at_its_cap() -> None:
    assert one_pass_ms(np.array([P]), col([32768.0]), col([25.0]))[0] / 1000 == pytest.approx(1310.72)


# (technique, working set MiB (NaN: not measured), 1 s dirty MiB, budget MiB, deadline ms, converges, why);
# memory 1024 MiB at 100 MiB/s (one pass 10.24 s), allowed downtime 300 ms
FITS = [
    (P, 8.0, 4.0, 30.0, 0.0, True, "8 MiB rewritten, 30 MiB fit the downtime: sent in the stop after one pass"),
    (P, 15.0, 4.0, 30.0, 0.0, True, "half the budget: within the margin"),
    (P, 16.0, 4.0, 30.0, 0.0, False, "beyond half the budget: the model decides"),
    (P, 8.0, 20.0, 30.0, 0.0, False, "20 MiB dirtied within 1 s: the working set is at least that"),
    (P, np.nan, 1.0, 30.0, 0.0, False, "no working set measured: a 1 s rate says nothing of a long round"),
    (AUTO, 8.0, 4.0, 30.0, 0.0, True, "any pre-copy"),
    (P, 8.0, 4.0, 30.0, 30_000.0, True, "a deadline leaving two passes and the stop"),
    (P, 8.0, 4.0, 30.0, 20_000.0, False, "a deadline leaving less than two passes: the model decides"),
    (POST, 8.0, 4.0, 30.0, 0.0, False, "post-copy is never guarded"),
]


@pytest.mark.parametrize(("code", "working_set", "dirty", "budget", "deadline", "fits", "why"), FITS)
def test_a_working_set_within_the_downtime_budget_converges(code: int, working_set: float, dirty: float,
                                                            budget: float, deadline: float, fits: bool,
                                                            why: str) -> None:
    verdict = working_set_fits(np.array([code]), col([1024.0]), col([100.0]), col([budget]), col([working_set]),
                               col([dirty]), col([300.0]), col([deadline]))
    assert bool(verdict[0]) is fits, why


# (technique, dirty MiB/s, usable MiB/s, working set over budget, cannot converge, why)
KEEPS_UP = [
    (P, 64.0, 8.0, 26.7, True, "64 MiB/s dirtied over an 8 MiB/s link, the working set 27 budgets"),
    (P, 8.0, 8.0, 26.7, True, "exactly the link's rate"),
    (P, 7.9, 8.0, 26.7, False, "a little slower than the link: rounds shrink"),
    (P, 64.0, 8.0, 2.0, False, "a working set of two budgets: within the margin"),
    (XBZRLE, 12.0, 8.0, 26.7, False, "XBZRLE sends deltas: 16 MiB/s of re-dirtied pages cross the link"),
    (XBZRLE, 16.0, 8.0, 26.7, True, "XBZRLE at its effective rate"),
    (COMPRESS, 12.0, 8.0, 26.7, False, "compressed pages: 12.1 MiB/s of re-dirtied memory cross the link"),
    (COMPRESS, 12.2, 8.0, 26.7, True, "compressed, at its effective rate"),
    (AUTO, 64.0, 8.0, 26.7, False, "auto-converge throttles the guest until it fits"),
    (POST, 64.0, 8.0, 26.7, False, "post-copy always ends"),
]


@pytest.mark.parametrize(("code", "dirty", "usable", "over_budget", "cannot", "why"), KEEPS_UP)
def test_a_guest_that_dirties_as_fast_as_the_link_sends_never_converges(code: int, dirty: float, usable: float,
                                                                        over_budget: float, cannot: bool,
                                                                        why: str) -> None:
    verdict = dirties_faster_than_sent(np.array([code]), col([dirty]), col([usable]), col([over_budget]))
    assert bool(verdict[0]) is cannot, why


def test_the_deciding_guard_and_what_it_does_to_the_probability() -> None:
    keeps_up = np.array([True, False, False, True, False])
    short = np.array([False, True, False, True, False])
    fits = np.array([False, False, True, False, False])
    verdicts = guard_verdicts(keeps_up, short, fits)
    assert [Guard(v) for v in verdicts] == [Guard.KEEPS_UP, Guard.DEADLINE, Guard.FITS, Guard.DEADLINE, Guard.NONE]
    assert apply_guards(col([0.87, 0.87, 0.3, 0.5, 0.42]), verdicts).tolist() == [0.0, 0.0, 1.0, 0.0, 0.42]
    assert [Guard(v).converges for v in verdicts] == [False, False, True, False, None]


# (technique, first pass MiB, usable MiB/s, 1 s dirty MiB/s, working set MiB (NaN: none), allowed ms, deadline ms,
#  guard, agrees with the working-set physics, why)
VERDICTS = [
    (P, 80.4, 8.0, 16.0, 64.0, 300.0, 0.0, Guard.KEEPS_UP,
     "64 MiB rewritten at 16 MiB/s over an 8 MiB/s cap, a 2.4 MiB budget: 26.7 budgets"),
    (P, 80.4, 8.0, 16.0, 4.0, 300.0, 0.0, Guard.KEEPS_UP,
     "the 1 s rate x 1 s (16 MiB) is the working set when the 4 s window reads less"),
    (P, 80.4, 8.0, 0.5, 1.0, 300.0, 0.0, Guard.FITS, "1 MiB rewritten against a 2.4 MiB budget: twice fits"),
    (P, 80.4, 8.0, 0.5, np.nan, 300.0, 0.0, Guard.NONE, "no window beyond 1 s: the model decides"),
    (P, 80.4, 8.0, 0.5, 1.0, 300.0, 10_000.0, Guard.DEADLINE, "80.4 MiB at 8 MiB/s take 10.05 s > 10 s"),
    (P, 80.4, 8.0, 0.5, 1.0, 300.0, 20_400.0, Guard.FITS, "two passes (20.1 s) and the stop fit 20.4 s"),
    (AUTO, 80.4, 8.0, 16.0, 64.0, 300.0, 0.0, Guard.NONE, "auto-converge throttles: the model decides"),
    (POST, 80.4, 8.0, 16.0, 64.0, 300.0, 10_000.0, Guard.DEADLINE, "post-copy's one pass does not fit 10 s either"),
    (POST, 80.4, 8.0, 16.0, 64.0, 300.0, 20_000.0, Guard.NONE, "post-copy ends: only the deadline guards it"),
]


@pytest.mark.parametrize(("code", "first", "usable", "dirty", "ws", "downtime", "deadline", "guard", "why"), VERDICTS)
def test_the_verdict_of_a_migration_from_its_inputs(code: int, first: float, usable: float, dirty: float, ws: float,
                                                     downtime: float, deadline: float, guard: Guard, why: str) -> None:
    got = verdicts(np.array([code]), col([first]), col([usable]), col([dirty]), col([ws]), col([downtime]),
                   col([deadline]))
    assert Guard(int(got[0])) is guard, why
    if guard in (Guard.KEEPS_UP, Guard.FITS) and not deadline:
        # the working-set physics agrees: never converges where KEEPS_UP rules it out, converges where FITS says
        seen = np.fmax(ws, dirty)
        a = working_set_arrays(np.array([code]), col([first]), col([seen]), col([dirty]), col([usable]), downtime)
        assert bool(a.converges[0]) is (guard is Guard.FITS), why


# An unknown dirty rate, as the inputs give it: taken as the usable bandwidth (8 MiB/s here), no working set.
# (technique, dirty rate measured, guard, why)
UNKNOWN_RATES = [
    (P, False, Guard.KEEPS_UP, "plain pre-copy sends at the link's rate: the rate taken already keeps up"),
    (COMPRESS, False, Guard.KEEPS_UP, "compression re-sends every dirtied page, shrunk: taken at its faster rate"),
    (COMPRESS, True, Guard.NONE, "a measured 8 MiB/s is below compression's 12.1 MiB/s: the model decides"),
    (XBZRLE, False, Guard.NONE, "blind means unchanged contents, which XBZRLE sends as near-empty deltas"),
    (AUTO, False, Guard.NONE, "auto-converge throttles until it fits: never ruled out"),
    (POST, False, Guard.NONE, "post-copy is never guarded"),
]


@pytest.mark.parametrize(("code", "known", "guard", "why"), UNKNOWN_RATES)
def test_an_unknown_dirty_rate_is_judged_at_the_techniques_own_rate(code: int, known: bool, guard: Guard,
                                                                    why: str) -> None:
    got = verdicts(np.array([code]), col([80.4]), col([8.0]), col([8.0]), col([np.nan]), col([300.0]), col([0.0]),
                   dirty_known=np.array([known]))
    assert Guard(int(got[0])) is guard, why


def test_every_rate_counts_as_measured_unless_said_otherwise() -> None:
    code = np.array([COMPRESS, COMPRESS])
    args = (col([80.4, 80.4]), col([8.0, 8.0]), col([8.0, 8.0]), col([np.nan, np.nan]), col([300.0, 300.0]),
            col([0.0, 0.0]))
    assert list(verdicts(code, *args)) == list(verdicts(code, *args, dirty_known=np.array([True, True])))
    assert list(verdicts(code, *args, dirty_known=np.array([True, False]))) == [Guard.NONE, Guard.KEEPS_UP]

