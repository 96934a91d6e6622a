"""The evacuate strategy as tables: priority order, capacity as the restarts fill it, and every VM that cannot be
restarted named with its reason."""

from __future__ import annotations

import pytest

from advisor.domain.model import MoveKind
from advisor.domain.transport import TlsMode
from advisor.physics.cold import restart_cost
from advisor.planning.engine import FilterPolicy, PlanSettings, plan
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm


def restarts(p):  # type: ignore[no-untyped-def]
    return [(m.vm_id, m.target_id) for m in p.moves]


def refusals(p):  # type: ignore[no-untyped-def]
    return {r.vm_id: (r.kind, r.reason) for r in p.refused}


# Host b has room for 8 GiB, c for 4 GiB: who gets in is decided by priority, then by memory, then by id.
@pytest.mark.parametrize(("priorities", "placed", "left_out"), [
    ({}, ["big", "m1"], {"m2"}),  # no priority: most memory first (big fills b), then by id
    ({"m2": 5}, ["m2", "m1"], {"big"}),  # m2 first takes room big needed: big is left out, not m2
    ({"m1": 1, "m2": 1}, ["m1", "m2"], {"big"}),  # both small ones before the big one
    ({"big": -1}, ["m1", "m2"], {"big"}),  # a negative priority goes after the default
    ({"big": 3, "m2": 2}, ["big", "m2"], {"m1"}),
])
def test_priority_decides_who_restarts_while_there_is_room(priorities, placed, left_out) -> None:  # type: ignore[no-untyped-def]
    c = cluster([host("a", memory=32768), host("b", memory=12288), host("c", memory=8192)],
                [vm("big", "a", memory=8192), vm("m1", "a", memory=4096), vm("m2", "a", memory=4096),
                 vm("fill-b", "b", memory=4096), vm("fill-c", "c", memory=4096)], cpu=0.05)
    p = plan("evacuate", c, COSTS, host="a", priorities=priorities)
    assert [v for v, _ in restarts(p)] == placed  # in priority order
    assert set(refusals(p)) == left_out
    for kind, reason in refusals(p).values():
        assert kind == "no target" and "memory" in reason
    assert all(m.parameters.kind is MoveKind.RESTART and m.source_id == "a" for m in p.moves)


def test_each_vm_that_cannot_be_restarted_says_why() -> None:
    c = cluster([host("a"), host("b", cpu_model="new"), host("c", memory=4096)],
                [vm("local", "a"), vm("no-def", "a"), vm("old-cpu", "a", cpu_model="old", memory=8192),
                 vm("apart-1", "a", anti_affinity_groups=frozenset({"g"})),
                 vm("apart-2", "b", anti_affinity_groups=frozenset({"g"})), vm("fits", "a", memory=2048)],
                cpu=0.05)
    blocked = {"local": ("local storage", "its disks are local"), "no-def": ("no definition", "never read")}
    p = plan("evacuate", c, COSTS, host="a", unrestartable=blocked)
    why = refusals(p)
    assert why["local"] == blocked["local"] and why["no-def"] == blocked["no-def"]
    assert why["old-cpu"][0] == "no target" and "CPU model" in why["old-cpu"][1]
    assert restarts(p) == [("apart-1", "c"), ("fits", "b")]  # apart-1 not beside apart-2; c is then full
    assert "Evacuate a: 5 VMs" in p.summary and "cannot be restarted" in p.summary


def test_anti_affinity_and_excluded_hosts_hold_for_restarts() -> None:
    c = cluster([host("a"), host("b"), host("c"), host("d")],
                [vm("x", "a", anti_affinity_groups=frozenset({"g"})),
                 vm("y", "b", anti_affinity_groups=frozenset({"g"}))], cpu=0.05)
    p = plan("evacuate", c, COSTS, host="a", excluded=("c",))
    assert restarts(p) == [("x", "d")]
    none = plan("evacuate", c, COSTS, host="a", excluded=("c", "d"))
    assert restarts(none) == [] and refusals(none)["x"][0] == "no target"
    assert "anti-affinity" in refusals(none)["x"][1]


def test_capacity_counts_the_restarts_already_placed() -> None:
    c = cluster([host("a"), host("b", memory=8192)], [vm(f"v{i}", "a", memory=4096) for i in range(3)], cpu=0.05)
    p = plan("evacuate", c, COSTS, host="a")
    assert restarts(p) == [("v0", "b"), ("v1", "b")]
    assert "once the 2 before it restart" in refusals(p)["v2"][1]
    assert p.after.loads.vm_host[c.vm_index("v0")] == c.host_index("b")


def test_migration_tls_does_not_apply_to_a_restart() -> None:
    c = cluster([host("a"), host("b")], [vm("x", "a")], cpu=0.05)
    required = PlanSettings(filters=FilterPolicy(migration_tls=TlsMode.REQUIRED))
    assert restarts(plan("evacuate", c, COSTS, host="a", settings=required)) == [("x", "b")]


def test_restarts_are_predicted_by_their_steps_and_scheduled_under_the_targets_slots() -> None:
    """Five restarts onto one target, two at a time (its slots; the dead source takes none): three waves."""
    c = cluster([host("a"), host("b"), host("c", in_maintenance=True)],
                [vm(f"v{i}", "a", memory=1024) for i in range(5)], cpu=0.05)
    p = plan("evacuate", c, COSTS, host="a")
    cost = restart_cost()
    assert [m.target_id for m in p.moves] == ["b"] * 5 and all(m.cost == cost for m in p.moves)
    assert cost.total_time_ms.median == pytest.approx(3110.0) and cost.transferred_mib.high < 0.01
    assert [m.wave for m in p.moves] == [0, 0, 1, 1, 2] and p.waves == 3
    assert p.duration_s == pytest.approx(3 * cost.total_time_ms.median / 1000)
    assert p.duration_p90_s == pytest.approx(3 * cost.total_time_ms.high / 1000)
    assert p.cost_model == "restart-steps 1.0.0"
    assert "predicted 3.1 s (p90 10.0 s) to the guest running and checked" in p.moves[0].explanation.why_technique
