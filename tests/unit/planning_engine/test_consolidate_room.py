"""Memory-aware consolidation (`make_room`): a VM no host has the memory for goes where moving one smaller VM away
first makes room, so that its host can still be emptied; without it, the host stays."""

from __future__ import annotations

from advisor.planning.engine import AntiChurn, FilterPolicy, PlanSettings
from advisor.planning.engine.consolidate import consolidate
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

SETTINGS = PlanSettings(filters=FilterPolicy(max_cpu_after=0.95, memory_allocation_ratio=1.0),
                        churn=AntiChurn(max_moves=1000))
GIB = 1024


def moves(make_room: int, small_pinned: bool = False) -> list[tuple[str, str]]:
    """"big" (8 GiB) leaves "src"; "a" has 6 GiB free (4 of them held by the movable "small"), "b" 4 GiB."""
    hosts = [host("src", memory=16 * GIB), host("a", memory=16 * GIB), host("b", memory=16 * GIB)]
    vms = [vm("big", "src", memory=8 * GIB), vm("a1", "a", memory=6 * GIB), vm("small", "a", memory=4 * GIB),
           vm("b1", "b", memory=12 * GIB)]
    pinned = ["a1", "b1"] + (["small"] if small_pinned else [])
    c = cluster(hosts, vms, cpu=0.1, pinned=pinned)
    p = consolidate(c, COSTS, settings=SETTINGS, underload=0.5, min_saving_w=0.0, make_room=make_room)
    for m in p.moves:  # each move says why
        assert m.explanation.why_vm.startswith("make room on a" if m.vm_id == "small" else "empty src")
    return [(m.vm_id, m.target_id) for m in p.moves]


def test_without_making_room_the_host_stays() -> None:
    assert moves(0) == []


def test_a_smaller_vm_moves_first_to_make_room() -> None:
    assert moves(2) == [("small", "b"), ("big", "a")]


def test_no_room_is_made_with_a_vm_that_may_not_move() -> None:
    assert moves(2, small_pinned=True) == []


def order_moves(dominant: bool, memory_ratio: float = 1.0) -> list[tuple[str, str]]:
    """"src" holds "c" (4 busy cores, 2 GiB) and "m" (half a core, 23 GiB). "t1" has 5 cores (under the 95%
    headroom) and 24 GiB free, "t2" 13 cores and 14 GiB: only "m" first into "t1", then "c" into "t2", empties
    "src"; most CPU first sends "c" to "t1" (the fuller) and "m" then fits nowhere."""
    hosts = [host("src", memory=64 * GIB), host("t1", memory=64 * GIB), host("t2", memory=64 * GIB)]
    vms = [vm("c", "src", vcpus=4, memory=2 * GIB), vm("m", "src", vcpus=1, memory=23 * GIB),
           vm("p1", "t1", vcpus=10, memory=40 * GIB), vm("p2", "t2", vcpus=2, memory=50 * GIB)]
    c = cluster(hosts, vms, cpu={"c": 1.0, "m": 0.5, "p1": 1.0, "p2": 1.0}, pinned=["p1", "p2"])
    settings = PlanSettings(filters=FilterPolicy(max_cpu_after=0.95, memory_allocation_ratio=memory_ratio),
                            churn=AntiChurn(max_moves=1000))
    p = consolidate(c, COSTS, settings=settings, underload=0.5, min_saving_w=0.0, dominant_order=dominant)
    return [(m.vm_id, m.target_id) for m in p.moves]


def test_most_cpu_first_leaves_the_large_memory_vm_nowhere() -> None:
    assert order_moves(dominant=False) == []


def test_largest_share_first_empties_the_host() -> None:
    assert order_moves(dominant=True) == [("m", "t1"), ("c", "t2")]


def test_memory_not_enforced_keeps_most_cpu_first() -> None:
    unbound = float("inf")
    assert order_moves(dominant=True, memory_ratio=unbound) == order_moves(dominant=False, memory_ratio=unbound)
