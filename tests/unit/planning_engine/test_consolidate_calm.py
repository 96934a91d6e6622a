"""Consolidation leaves a host in a lull alone (`recently_busy`), and `recent_peak` says which hosts were busy: the
highest total its VMs of now asked for over their last samples."""

from __future__ import annotations

import numpy as np

from advisor.planning.engine import AntiChurn, PlanSettings
from advisor.planning.engine.consolidate import consolidate
from advisor.planning.engine.forecast import recent_peak
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

ROOM = PlanSettings(churn=AntiChurn(max_moves=1000))


def emptied(recently_busy: list[bool] | None) -> set[str]:
    hosts = [host("a", cores=8), host("b", cores=8), host("dest", cores=16)]
    vms = [vm("a1", "a", vcpus=2), vm("b1", "b", vcpus=2), vm("d1", "dest", vcpus=8)]
    c = cluster(hosts, vms, cpu={"a1": 0.5, "b1": 0.5, "d1": 0.5}, pinned=["d1"])
    busy = None if recently_busy is None else np.array(recently_busy)
    p = consolidate(c, COSTS, settings=ROOM, underload=0.5, min_saving_w=0.0, recently_busy=busy)
    return {m.source_id for m in p.moves}


def test_every_underloaded_host_is_emptied_without_the_rule() -> None:
    assert emptied(None) == {"a", "b"}


def test_a_host_busy_lately_is_left_running() -> None:
    assert emptied([True, False, False]) == {"b"}
    assert emptied([True, True, False]) == set()


def test_the_peak_is_of_the_hosts_vms_of_now_at_their_last_samples() -> None:
    # newest first; VM 0 and 1 on host 0, VM 2 on host 1, VM 3 nowhere
    history = np.array([[0.1, 0.9, 0.2], [0.1, 0.1, 0.9], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    vm_host = np.array([0, 0, 1, -1])
    vcpus = np.array([2.0, 2.0, 4.0, 8.0])
    peak = recent_peak(history, 3, vm_host, vcpus, 2, samples=3)
    assert np.allclose(peak, [2.2, 2.0])  # host 0's second sample: 0.9 x 2 + 0.1 x 2
    assert np.allclose(recent_peak(history, 3, vm_host, vcpus, 2, samples=1), [0.4, 2.0])
    # samples a VM has not had count nothing
    assert np.allclose(recent_peak(history, np.array([1, 3, 3, 3]), vm_host, vcpus, 2, samples=3), [1.8, 2.0])
