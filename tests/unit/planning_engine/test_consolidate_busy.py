"""Consolidation priced by the guests' slowdown (`busy_floor`): of two hosts that save the same power and move the
same memory, the one whose VMs are idle is emptied first; without it, the order is by migration seconds alone."""

from __future__ import annotations

from advisor.planning.engine import AntiChurn, PlanSettings, plan
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

# Room for one host's VMs only: whichever host is tried first is the one emptied.
ONE_HOST = PlanSettings(churn=AntiChurn(max_moves=1000))


def two_candidates() -> tuple[list, list, dict[str, float]]:
    hosts = [host("busy", cores=8), host("idle", cores=8), host("dest", cores=8)]
    vms = [vm("b1", "busy", memory=4096, vcpus=4), vm("i1", "idle", memory=4096, vcpus=4),
           vm("i2", "idle", memory=1, vcpus=1), vm("d1", "dest", memory=4096, vcpus=8)]
    # the same CPU load on both candidates (power alike), all of it in "busy"'s one VM, next to none in "idle"'s
    cpu = {"b1": 0.25, "i1": 0.0, "i2": 1.0, "d1": 0.70}
    return hosts, vms, cpu


def emptied(busy_floor: float | None) -> set[str]:
    hosts, vms, cpu = two_candidates()
    c = cluster(hosts, vms, cpu=cpu, pinned=["d1"])
    extra = {} if busy_floor is None else {"busy_floor": busy_floor}
    p = plan("consolidate", c, COSTS, settings=ONE_HOST, underload=0.5, min_saving_w=0.0, **extra)
    return {m.source_id for m in p.moves}


def test_the_host_whose_moves_slow_no_guest_is_emptied_first() -> None:
    assert emptied(0.1) == {"idle"}


def test_without_a_floor_the_order_is_by_migration_seconds() -> None:
    # "busy" moves 4 GiB, "idle" 4 GiB and 1 MiB: the fewer seconds go first
    assert emptied(None) == {"busy"}
