"""Consolidation bounded by foreseen overload (`overload_risk`): a VM goes to the fullest host only where that
host's chance of passing capacity stays within the bound (its VMs' spread counts); without it, to the fullest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advisor.planning.engine import AntiChurn, FilterPolicy, PlanSettings
from advisor.planning.engine.consolidate import consolidate
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

SETTINGS = PlanSettings(filters=FilterPolicy(max_cpu_after=0.95), churn=AntiChurn(max_moves=1000))


def target(overload_risk: float | None, wobble: float) -> str:
    """Where the one VM of "src" goes: "full" (5.5 of 8 cores busy, its VM's spread `wobble` cores) or "calm"
    (4 of 8, steady); either stays under the 95% headroom after taking the VM's 2 cores."""
    hosts = [host("src", cores=8), host("full", cores=8), host("calm", cores=8)]
    vms = [vm("v", "src", vcpus=2), vm("f", "full", vcpus=8), vm("c", "calm", vcpus=8)]
    c = cluster(hosts, vms, cpu={"v": 1.0, "f": 5.5 / 8, "c": 0.5}, pinned=["f", "c"])
    c = replace(c, vm_cpu_spread=np.array([0.1, wobble, 0.0]))
    p = consolidate(c, COSTS, settings=SETTINGS, underload=0.5, min_saving_w=0.0, overload_risk=overload_risk)
    assert [m.vm_id for m in p.moves] == ["v"]
    return p.moves[0].target_id


def test_without_a_bound_the_fullest_host_takes_the_vm() -> None:
    assert target(None, wobble=1.0) == "full"


def test_a_host_likely_to_pass_capacity_is_passed_over() -> None:
    # 7.5 of 8 cores foreseen with a spread of about 1 core: a third of the time over capacity
    assert target(0.05, wobble=1.0) == "calm"


def test_a_steady_full_host_still_takes_it() -> None:
    # the same 7.5 cores, steady (only the floor of 3% of the cores): about 0.0003 likely over
    assert target(0.05, wobble=0.0) == "full"
