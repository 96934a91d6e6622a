"""What the notes say when a guard decides convergence: what was measured, and nothing that was not."""

from __future__ import annotations

import pytest

from advisor.domain.model import Technique
from advisor.ml.convergence import guard_note, pause_note


@pytest.mark.parametrize(("working_set", "says"), [
    (None, "over at least 160.0 MiB (what it dirties in 1 s; its working set is not measured)"),
    (40.0, "over at least 160.0 MiB (what it dirties in 1 s; its working set measured 40.0 MiB)"),
    (160.0, "over a working set of 160.0 MiB"),
])
def test_the_keeps_up_note_says_what_was_measured(working_set: float | None, says: str) -> None:
    note = guard_note(Technique.PRECOPY, 160.0, 160.0, 9.6, working_set)
    assert note == (f"precopy cannot converge: the guest dirties 160.0 MiB/s, at least what the link sends, {says}, "
                    "more than the 9.6 MiB that fit the allowed downtime")


@pytest.mark.parametrize(("technique", "converges", "downtime", "said"), [
    (Technique.PRECOPY_COMPRESS, True, 757.0, True),  # both stand: QEMU's stop rule and what such pauses took
    (Technique.PRECOPY_COMPRESS, True, 250.0, False),
    (Technique.PRECOPY, False, 757.0, False),  # not converging: its note says so already
    (Technique.POSTCOPY, True, 757.0, False),  # no stop rule to outlast
])
def test_a_converging_pre_copy_predicted_to_pause_longer_than_allowed_says_why(
        technique: Technique, converges: bool, downtime: float, said: bool) -> None:
    note = pause_note(technique, converges, downtime, 300.0)
    assert bool(note) is said
    if said:
        assert note.startswith("converges, yet its pause is predicted at 757 ms, above the 300 ms allowed")
