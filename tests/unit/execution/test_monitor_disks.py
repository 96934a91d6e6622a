"""The monitor while local disks are mirrored before memory (a block migration), as tables of polls: the ETA from
what is left of the disks, no switch to post-copy before memory starts, and a mirror that does not catch up
aborted after the stall windows."""

from __future__ import annotations

import pytest

from advisor.domain.migration import Progress
from advisor.execution.monitor import Abort, MonitorPlan, StartPostcopy, start, step

PLAN = MonitorPlan(max_downtime_ms=300, deadline_ms=600_000, postcopy_allowed=True, postcopy_after_ms=0.0,
                   initial_downtime_ms=300, downtime_steps=0, stall_rounds=3, disk_window_ms=5000,
                   predicted_total_ms=40_000, predicted_mib_s=100.0)


def mirror(t_ms: float, left: float, rate: float = 100.0) -> Progress:
    """A poll while 4 GiB of disks are mirrored and the guest's 1 GiB of memory waits."""
    return Progress(t_ms, 1024.0, 1024.0, 0.0, 0.0, 0, disk_total_mib=4096.0, disk_remaining_mib=left,
                    disk_rate_mib_s=rate)


def memory(t_ms: float, iteration: int, left: float) -> Progress:
    return Progress(t_ms, 1024.0, left, 5.0, 100.0, iteration, disk_total_mib=4096.0, disk_remaining_mib=2.0,
                    disk_rate_mib_s=100.0)


def run(polls: list[tuple[float, Progress]]) -> tuple[list[tuple[float, Abort | StartPostcopy]], list[str]]:
    """Each escalation with the time it was asked at, and the estimate's words after each poll."""
    state, _ = start(PLAN)
    escalations, reasons = [], []
    for now, progress in polls:
        state, more = step(state, progress, now, PLAN)
        escalations += [(now, a) for a in more if isinstance(a, Abort | StartPostcopy)]
        reasons.append(state.estimate.reason)
    return escalations, reasons


@pytest.mark.parametrize(("left", "rate", "eta_ms", "words"), [
    # 3000 MiB of disk and 1024 MiB of memory still to send at 100 MiB/s, then the stop
    (3000.0, 100.0, 40_240 + 300, "mirroring the local disks: 3000 of 4096 MiB left at 100.0 MiB/s"),
    (0.0, 50.0, 20_480 + 300, "0 of 4096 MiB left at 50.0 MiB/s"),
    # no rate yet: the prediction's ETA
    (4096.0, 0.0, 40_000 - 1000, "mirroring the local disks: as predicted at 100.0 MiB/s, 40.0 s in all"),
])
def test_the_eta_while_mirroring(left: float, rate: float, eta_ms: float, words: str) -> None:
    state, _ = start(PLAN)
    state, actions = step(state, mirror(1000, left, rate), 1000, PLAN)
    assert state.estimate.eta_ms == pytest.approx(eta_ms) and words in state.estimate.reason
    assert actions == []  # the planned switch to post-copy waits for memory


def test_a_mirror_catching_up_is_left_alone_and_post_copy_starts_with_memory() -> None:
    polls = [(1000.0 * t, mirror(1000.0 * t, 4096 - 100 * t)) for t in range(1, 41)]
    polls.append((41_000, memory(41_000, 1, 1000.0)))
    escalations, reasons = run(polls)
    assert [(t, type(a).__name__) for t, a in escalations] == [(41_000, "StartPostcopy")]
    assert "planned switch to post-copy" in escalations[0][1].reason
    assert reasons[-1] == "first pass over memory"


@pytest.mark.parametrize(("lefts", "aborted_at"), [
    # written as fast as copied: stuck at 800 MiB; the window at 5 s sets the low, those at 10, 15 and 20 s find
    # no new one
    ([4000, 2000, 800] + [800] * 30, 20_000),
    # a noisy floor that keeps going down by more than 10% a window is progress
    ([4000 * 0.85**k for k in range(33)], None),
    # stalls, then catches up before the third window without progress: no abort
    ([4000, 900, 880, 870] + [600 - 20 * k for k in range(29)], None),
])
def test_a_mirror_not_catching_up_is_aborted_after_the_stall_windows(lefts: list[float],
                                                                      aborted_at: float | None) -> None:
    # one poll a second, judged every 5 s: windows end at 5, 10, 15, 20 s ...
    polls = [(1000.0 * (k + 1), mirror(1000.0 * (k + 1), left)) for k, left in enumerate(lefts)]
    escalations, _ = run(polls)
    if aborted_at is None:
        assert escalations == []
        return
    # once, and no post-copy: memory never started
    assert [(t, type(a).__name__) for t, a in escalations] == [(aborted_at, "Abort")]
    assert "mirror is not catching up: 800 MiB left after 3 windows of 5 s" in escalations[0][1].reason
