"""When a host is down, as a table of its signs of life."""

from __future__ import annotations

import pytest

from advisor.domain.evacuation import HostSigns, judge_host, restart_priority, storage_refusal
from advisor.domain.model import Disk

NOW, AFTER = 1000.0, 60.0


@pytest.mark.parametrize(("signs", "down", "why"), [
    (HostSigns(hypervisor_answered_s=990, hypervisor_tried_s=990), False, "its hypervisor answered 10 s ago"),
    # a failed try within the window is not yet down
    (HostSigns(990, 999, "refused"), False, "its hypervisor answered 10 s ago"),
    (HostSigns(900, 995, "refused"), True, "its hypervisor has not answered for 100 s (last try 5 s ago: refused)"),
    (HostSigns(None, 995, ""), True, "its hypervisor never answered"),
    (HostSigns(900, 995, "refused", sample_s=980), False, "a sample of it arrived 20 s ago"),  # pushed: alive
    (HostSigns(sample_s=900), True, "no sample of it for 100 s (more than 60 s)"),
    (HostSigns(900, 900), None, "nothing tells whether h is down"),  # the telemetry stopped trying
    (HostSigns(), None, "nothing tells whether h is down"),
])
def test_a_host_is_judged_by_its_signs_of_life(signs: HostSigns, down: bool | None, why: str) -> None:
    verdict = judge_host("h", signs, NOW, AFTER)
    assert verdict.down is down and verdict.why.startswith(why)


def test_labels_give_priority_and_storage() -> None:
    assert [restart_priority(labels) for labels in ({}, {"advisor.priority": "7"}, {"advisor.priority": "-3"})] == [
        0, 7, -3]
    assert storage_refusal({}) is None and storage_refusal({"advisor.storage": "shared"}) is None
    assert "local to its host" in (storage_refusal({"advisor.storage": "local"}) or "")
    shared, local = Disk("vda", 10.0, 1.0, shared=True), Disk("vdb", 10.0, 1.0, shared=False)
    assert storage_refusal({}, [shared]) is None
    assert storage_refusal({"advisor.storage": "shared"}, [shared, local]) == (
        "its disk vdb is local to its host: died with it")
