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
