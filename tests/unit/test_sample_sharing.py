"""Samples shared between replicas (advisor.sample_sharing) over a feed whose rows may commit out of order: a row
numbered below one already read is asked for again until it comes, or until GAP_WAIT_S has passed."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pytest

from advisor import sample_sharing
from advisor.adapters.sql.feed import Batch
from advisor.domain.model import HostSample, VmSample
from advisor.sample_sharing import FEED_KEEP_S, GAP_WAIT_S, PRUNE_EVERY, SharedSamples

NOW = 1_000_000.0


class ScriptedFeed:
    """Rows made visible by the test in any order; what was published and asked for is recorded."""

    def __init__(self) -> None:
        self.visible: dict[int, Batch] = {}
        self.published: list[tuple[str, list[VmSample]]] = []
        self.asked: list[tuple[int, list[int]]] = []
        self.pruned: list[float] = []

    def publish(self, origin: str, written_at_s: float, hosts: Sequence[HostSample],
                vms: Sequence[VmSample]) -> None:
        self.published.append((origin, list(vms)))

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Batch]:
        self.asked.append((after, list(also)))
        return [b for seq, b in sorted(self.visible.items()) if seq > after or seq in also]

    def prune(self, before_s: float) -> int:
        self.pruned.append(before_s)
        return 0


def row(seq: int, vm: str) -> Batch:
    return Batch(seq, [], [VmSample(vm, NOW + seq, dirty_rate_mib_s=float(seq))])


def test_a_row_that_commits_after_a_later_one_is_still_read() -> None:
    feed, seconds = ScriptedFeed(), [0.0]
    samples = SharedSamples(8, feed, "me", clock=lambda: NOW, monotonic=lambda: seconds[0])
    feed.visible = {5: row(5, "a"), 7: row(7, "c")}  # 6 is written, not yet committed; below 5: pruned
    samples.exchange()
    assert feed.asked[-1] == (0, []) and samples.vm_latest("c", "dirty_rate_mib_s") is not None
    feed.visible[6] = row(6, "b")
    seconds[0] = GAP_WAIT_S / 2
    samples.exchange()
    assert feed.asked[-1] == (7, [6]) and samples.vm_latest("b", "dirty_rate_mib_s") is not None
    samples.exchange()
    assert feed.asked[-1] == (7, [])  # read: no longer asked for
    assert feed.published == []  # what was read is not published again


def test_a_number_never_used_is_given_up_after_a_while_and_what_is_added_here_is_published_once() -> None:
    feed, seconds = ScriptedFeed(), [0.0]
    samples = SharedSamples(8, feed, "me", clock=lambda: NOW, monotonic=lambda: seconds[0])
    feed.visible = {1: row(1, "a"), 3: row(3, "c")}
    samples.add([], [VmSample("mine", NOW, dirty_rate_mib_s=1.0)])
    samples.exchange()
    assert feed.published == [("me", [VmSample("mine", NOW, dirty_rate_mib_s=1.0)])]
    seconds[0] = GAP_WAIT_S + 1
    samples.exchange()
    assert feed.asked[-1] == (3, []) and len(feed.published) == 1
    for _ in range(PRUNE_EVERY):
        samples.exchange()
    assert feed.pruned == [NOW - FEED_KEEP_S]


def test_samples_waiting_beyond_the_outbox_are_not_shared_but_kept_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_sharing, "OUTBOX_MAX", 3)
    feed = ScriptedFeed()
    samples = SharedSamples(8, feed, "me", clock=lambda: NOW)
    samples.add([], [VmSample(f"v{i}", NOW) for i in range(4)])
    samples.add([], [VmSample("last", NOW, dirty_rate_mib_s=2.0)])
    samples.exchange()
    assert feed.published == [("me", [VmSample("last", NOW, dirty_rate_mib_s=2.0)])]
    assert len(samples.vm_window("v0")[0]) == 1  # kept here all the same
