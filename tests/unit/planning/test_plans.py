"""Cluster plans on small snapshots: every move is simulated before the next is chosen."""

from __future__ import annotations

from advisor.domain.model import Host, Vm
from advisor.planning.plans import ClusterSnapshot, plan_consolidate, plan_drain, plan_rebalance


def host(ident: str, cores: int = 16, memory: int = 32768, **kw: object) -> Host:
    return Host(**{"id": ident, "cpu_cores": cores, "memory_mib": memory, **kw})  # type: ignore[arg-type]


def vm(ident: str, host_id: str, memory: int = 4096, vcpus: int = 2, **kw: object) -> Vm:
    return Vm(**{"id": ident, "host_id": host_id, "memory_mib": memory, "vcpus": vcpus, **kw})  # type: ignore[arg-type]


def snapshot(hosts: list[Host], vms: list[Vm], vm_cpu: float = 0.25) -> ClusterSnapshot:
    return ClusterSnapshot({h.id: h for h in hosts}, {v.id: v for v in vms}, {}, {v.id: vm_cpu for v in vms})


def by_memory(v: Vm) -> float:
    return float(v.memory_mib)


def test_drain_places_every_vm_and_later_moves_see_earlier_ones() -> None:
    # b and c have room for two 12 GiB VMs each at most; four leave a: the plan must spread them.
    snap = snapshot([host("a"), host("b", memory=24576), host("c", memory=24576)],
                    [vm(f"v{i}", "a", memory=12288) for i in range(4)])
    plan = plan_drain(snap, "a", by_memory)
    assert not plan.unplaced
    targets = [m.target_host_id for m in plan.moves]
    assert sorted(targets) == ["b", "b", "c", "c"]
    assert all(m.source_host_id == "a" for m in plan.moves)
    assert "the host is then empty" in plan.summary


def test_drain_respects_anti_affinity_and_reports_what_cannot_move() -> None:
    snap = snapshot([host("a"), host("b"), host("c", in_maintenance=True)],
                    [vm("db1", "a", anti_affinity_groups=frozenset({"db"})),
                     vm("db2", "b", anti_affinity_groups=frozenset({"db"})), vm("web", "a")])
    plan = plan_drain(snap, "a", by_memory)
    assert [(m.vm_id, m.target_host_id) for m in plan.moves] == [("web", "b")]
    (vm_id, reason), = plan.unplaced
    assert vm_id == "db1" and "anti-affinity group 'db'" in reason and "in maintenance" in reason


def test_rebalance_moves_cheap_vms_off_the_busiest_host_until_the_spread_closes() -> None:
    snap = snapshot([host("a"), host("b"), host("c")],
                    [vm(f"v{i}", "a", memory=2048 * (i + 1)) for i in range(5)] + [vm("w", "b")])
    plan = plan_rebalance(snap, by_memory)
    assert plan.moves and all(m.source_host_id == "a" for m in plan.moves)
    assert plan.moves[0].vm_id == "v0"  # the cheapest to move first
    assert len({m.vm_id for m in plan.moves}) == len(plan.moves)  # nobody moves twice
    assert "load spread after" in plan.summary


def test_a_balanced_cluster_needs_no_rebalance() -> None:
    snap = snapshot([host("a"), host("b")], [vm("v1", "a"), vm("v2", "b")])
    assert plan_rebalance(snap, by_memory).moves == ()


def test_consolidate_empties_the_lightest_hosts_when_the_others_can_take_their_vms() -> None:
    snap = snapshot([host("a", idle_power_w=90.0), host("b", idle_power_w=90.0), host("c", idle_power_w=120.0)],
                    [vm("v1", "a"), vm("v2", "b"), vm("v3", "b"), vm("v4", "c", memory=16384)])
    plan = plan_consolidate(snap, by_memory)
    emptied = {m.source_host_id for m in plan.moves}
    assert "a" in emptied
    assert all(m.target_host_id not in emptied for m in plan.moves)
    assert "W idle power saved" in plan.summary
    assert plan_consolidate(snap, by_memory, max_moves=1).moves[0].source_host_id == "a"


def test_recently_moved_vms_are_pinned() -> None:
    snap = snapshot([host("a"), host("b"), host("c")],
                    [vm(f"v{i}", "a", memory=2048 * (i + 1)) for i in range(5)] + [vm("w", "b")])
    pinned = frozenset({"v0", "v1"})
    plan = plan_rebalance(snap, by_memory, pinned=pinned)
    assert plan.moves and not {m.vm_id for m in plan.moves} & pinned
    consolidation = plan_consolidate(snapshot([host("a"), host("b")], [vm("x", "a"), vm("y", "b")]), by_memory,
                                     pinned=frozenset({"x", "y"}))
    assert consolidation.moves == ()
