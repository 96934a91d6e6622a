"""Each strategy on small hand-built clusters: what it moves, what it refuses and why, and that it never churns."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, MoveHistory, PlanSettings, VmHostRule, plan, strategy_names
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

FREE = PlanSettings(churn=AntiChurn(max_moves=100))  # no cap in the way unless a test wants one


def test_drain_reports_up_front_the_vms_it_cannot_evacuate_and_why() -> None:
    hosts = [host("a", cpu_model="new"), host("b", cpu_model="new"), host("c", cpu_model="new", in_maintenance=True),
             host("d", cpu_model="old")]
    vms = [
        vm("db1", "a", cpu_model="new", anti_affinity_groups=frozenset({"db"})),  # b has db2, c maintenance, d old
        vm("db2", "b", anti_affinity_groups=frozenset({"db"})),
        vm("pinned", "a"),
        vm("huge", "a", memory=60000, vcpus=1),  # 60 s at 1000 MiB/s, over a 30 s deadline by any technique
        vm("web", "a"),
    ]
    c = cluster(hosts, vms, pinned=["pinned"])
    p = plan("drain", c, COSTS, settings=FREE, host="a", deadline_s=30)
    dry = {r.vm_id: r for r in p.dry_run}
    assert set(dry) == {"db1", "pinned", "huge"}
    assert dry["db1"].kind == "no target"
    assert "anti-affinity 1" in dry["db1"].reason and "CPU model 1" in dry["db1"].reason
    assert "disabled 1" in dry["db1"].reason and "VM db2 runs there" in dry["db1"].reason
    assert dry["pinned"].kind == "pinned"
    assert dry["huge"].kind == "limit" and "deadline 30.0 s" in dry["huge"].reason
    assert [(m.vm_id, m.target_id) for m in p.moves] == [("web", "d")]  # web runs on any CPU model
    assert "3 VMs cannot be evacuated, " in p.summary and "left with 3 VMs" in p.summary and "dry run" not in p.summary


def test_drain_moves_the_hardest_first_and_postpones_what_ends_after_the_deadline() -> None:
    hosts = [host("a"), host("b"), host("c", cpu_model="x")]
    vms = [vm(f"v{i}", "a", memory=8192) for i in range(5)] + [vm("picky", "a", cpu_model="x", memory=1024)]
    c = cluster(hosts, vms)
    free = plan("drain", c, COSTS, settings=FREE, host="a")
    assert len(free.moves) == 6 and free.after.loads.host_vms[0] == 0 and "the host is then empty" in free.summary
    assert "placed 1 of 6" in next(m for m in free.moves if m.vm_id == "picky").explanation.why_vm
    one = free.moves[0].cost.total_time_ms.high / 1000
    late = plan("drain", c, COSTS, settings=FREE, host="a", deadline_s=2.5 * one)
    assert 0 < len(late.moves) < 6
    postponed = [r for r in late.refused if r.kind == "deadline"]
    assert postponed and all(r.postponed for r in postponed)
    assert all(m.start_s + m.cost.total_time_ms.high / 1000 <= 2.5 * one for m in late.moves)
    assert int(late.after.loads.host_vms[0]) == len(postponed)  # what is postponed stays on the host


def test_consolidation_empties_a_host_and_keeps_anti_affinity() -> None:
    hosts = [host("a"), host("b"), host("c")]
    vms = [vm("x1", "a", anti_affinity_groups=frozenset({"x"})), vm("y", "a"),
           vm("x2", "b", anti_affinity_groups=frozenset({"x"})), vm("b2", "b"), vm("b3", "b"), vm("c1", "c"),
           vm("c2", "c"), vm("c3", "c"), vm("c4", "c")]
    c = cluster(hosts, vms, cpu=0.5)
    p = plan("consolidate", c, COSTS, settings=FREE)
    moved = {m.vm_id: m.target_id for m in p.moves}
    assert moved == {"x1": "c", "y": "c"}  # x2 is on b; y packs onto the fullest host too
    after = p.after
    assert after.loads.host_vms.tolist() == [0, 3, 6]
    x = [after.vm_host[after.vm_index(v)] for v in ("x1", "x2")]
    assert x[0] != x[1]
    assert p.power is not None and [h for h, _ in p.power.switch_off] == ["a"] and p.power.saved_w > 90
    x1 = next(m for m in p.moves if m.vm_id == "x1")
    assert ("anti-affinity", 1) in {(f, n) for f, n, _, _ in x1.explanation.rejections}
    assert "switched off" in x1.explanation.why_vm and "W drawn" in x1.explanation.why_vm


def test_consolidation_is_all_or_nothing_and_says_which_idle_hosts_to_wake() -> None:
    hosts = [host("a"), host("b"), host("idle1"), host("idle2", cores=32)]
    # b has no room for a's VMs (CPU headroom): nothing moves, and the running hosts are loaded beyond 80%
    vms = [vm("a1", "a", vcpus=8), vm("a2", "a", vcpus=6), vm("b1", "b", vcpus=8), vm("b2", "b", vcpus=6)]
    c = cluster(hosts, vms, cpu=0.95)
    p = plan("consolidate", c, COSTS, settings=FREE, underload=0.9)
    assert p.moves == ()
    assert {r.kind for r in p.refused} == {"no target"}
    assert p.power is not None and p.power.load_after > 0.8
    assert p.power.switch_on == ("idle2",)  # the most capacity per watt first
    assert p.power.wake_order == ("idle1",)


def test_balance_relieves_a_hotspot_with_the_cheapest_vm_that_is_enough() -> None:
    hosts = [host("hot"), host("b"), host("c")]
    vms = [vm("big", "hot", memory=32768, vcpus=8), vm("small", "hot", memory=1024, vcpus=8),
           vm("tiny", "hot", memory=512, vcpus=1), vm("b1", "b")]
    p = plan("balance", cluster(hosts, vms, cpu=0.9), COSTS, settings=FREE, tolerance=0.0)
    assert [m.vm_id for m in p.moves] == ["small"]  # 7.2 of the 3.6 cores above 85%: relieves it all, cheaply
    why = p.moves[0].explanation.why_vm
    assert "is hot (" in why and "the most relief per second" in why


def test_balance_never_moves_a_vm_back_to_the_host_it_left() -> None:
    hosts = [host("a"), host("b"), host("c", cores=8)]
    vms = [vm(f"a{i}", "a", vcpus=4) for i in range(4)] + [vm("b1", "b")]
    first = plan("balance", cluster(hosts, vms, cpu=1.0), COSTS, settings=FREE, now_s=0.0)
    assert first.moves and len({m.vm_id for m in first.moves}) == len(first.moves)  # a VM moves once per plan
    moved = first.moves[0]
    history = MoveHistory().record([(m.vm_id, m.source_id, m.target_id, 5.0) for m in first.moves], 0.0)
    # Later: the moved VM's new host is hot and the host it left is empty, the obvious target, yet forbidden.
    later = cluster(hosts, [vm(moved.vm_id, moved.target_id, vcpus=4), vm("big", moved.target_id, vcpus=12),
                            vm("c1", "c", vcpus=6)], cpu=1.0)
    churn = AntiChurn(cooldown_s=100.0, cooldown_per_move_s=0.0, return_factor=10.0, max_moves=100)
    second = plan("balance", later, COSTS, settings=PlanSettings(churn=churn), history=history, now_s=500.0,
                  tolerance=0.0)
    assert [(m.vm_id, m.target_id) for m in second.moves] == [("big", moved.source_id)]
    (refusal,) = second.refused
    assert refusal.vm_id == moved.vm_id and refusal.kind == "no target" and "recently left 1" in refusal.reason
    assert "left this host within its cooldown" in refusal.reason


def test_cooldown_grows_with_the_cost_of_the_last_move_and_holds_the_vm() -> None:
    churn = AntiChurn(cooldown_s=600.0, cooldown_per_move_s=30.0)
    assert churn.cooldown(40.0) == 600.0 + 1200.0 > churn.cooldown(4.0)
    hosts = [host("hot"), host("b"), host("c")]
    vms = [vm("cheap", "hot", memory=512, vcpus=8), vm("dear", "hot", memory=16384, vcpus=8), vm("c1", "c")]
    c = cluster(hosts, vms, cpu=0.9)
    history = MoveHistory().record([("cheap", "b", "hot", 40.0)], now_s=0.0)
    settings = PlanSettings(churn=AntiChurn(cooldown_s=600.0, cooldown_per_move_s=30.0, max_moves=10))
    during = plan("balance", c, COSTS, settings=settings, history=history, now_s=1000.0, tolerance=0.0)
    assert [m.vm_id for m in during.moves] == ["dear"]  # cheap moved 1000 s ago; its cooldown is 1800 s
    after = plan("balance", c, COSTS, settings=settings, history=history, now_s=2000.0, tolerance=0.0)
    # cooled down, it moves again, but not back to b, which it left less than twice its cooldown ago
    assert [(m.vm_id, m.target_id) for m in after.moves] == [("cheap", "c")]
    assert history.prune(1e6, settings.churn).last == {}


def test_the_cap_limits_moves_per_plan_and_postpones_the_rest() -> None:
    hosts = [host(f"h{i}") for i in range(8)]
    vms = [vm(f"v{i}", f"h{i}") for i in range(8)]  # eight light hosts, one VM each
    c = cluster(hosts, vms, cpu=0.1)
    assert AntiChurn().cap(400) == 10 and AntiChurn().cap(3) == 1
    capped = plan("consolidate", c, COSTS, settings=PlanSettings(churn=AntiChurn(max_moves=3)))
    assert len(capped.moves) == 3 and "postponed by the cap of 3 moves" in capped.summary
    assert len(plan("consolidate", c, COSTS, max_moves=5).moves) == 5


def test_the_anti_churn_cap_never_blocks_emptying_the_first_host_a_bound_asked_for_does() -> None:
    hosts = [host(f"h{i}") for i in range(3)]
    vms = [vm(f"v{i}", f"h{i % 3}") for i in range(6)]  # two VMs a host; the cap of 6 VMs is 1 move
    c = cluster(hosts, vms, cpu=0.1)
    p = plan("consolidate", c, COSTS)
    assert len(p.moves) == 2 and len({m.source_id for m in p.moves}) == 1 and "empty 1 of 3" in p.summary
    assert "Nothing emptied" not in p.summary
    bound = plan("consolidate", c, COSTS, max_moves=1)
    assert bound.moves == () and "Nothing emptied: h" in bound.summary
    assert "stays, its 2 VMs would pass the cap of 1 move." in bound.summary
    pinned = plan("consolidate", cluster(hosts, vms, cpu=0.1, pinned=[v.id for v in vms]), COSTS)
    assert pinned.moves == () and ": pinned or migrating." in pinned.summary


def test_min_gain_and_min_saving_refuse_moves_not_worth_their_migration() -> None:
    hosts = [host("a"), host("b")]
    vms = [vm("a1", "a"), vm("a2", "a"), vm("b1", "b")]
    c = cluster(hosts, vms, cpu=0.3)
    even = plan("balance", c, COSTS, settings=PlanSettings(churn=AntiChurn(min_gain=0.5, max_moves=10)), hot=0.99,
                tolerance=0.01)
    assert even.moves == ()
    stingy = plan("consolidate", c, COSTS, settings=FREE, min_saving_w=500.0)
    assert stingy.moves == () and {r.kind for r in stingy.refused} == {"min gain"}


def test_a_move_that_breaks_the_downtime_limit_is_refused_with_the_reason() -> None:
    hosts = [host("hot"), host("b", cores=64)]
    vms = [vm("busy", "hot", vcpus=14, postcopy_allowed=False)]
    c = cluster(hosts, vms, cpu=1.0, dirty=5000.0)
    settings = PlanSettings(churn=AntiChurn(max_moves=10), max_downtime_ms=1.0)
    p = plan("balance", c, COSTS, settings=settings, tolerance=0.0)
    assert p.moves == ()
    (refusal,) = p.refused
    assert refusal.kind == "limit" and refusal.target_id == "b" and "downtime up to" in refusal.reason


def test_plans_explain_every_move_with_numbers_and_bounded_alternatives() -> None:
    hosts = [host(f"h{i}") for i in range(12)]
    vms = [vm(f"v{i}", "h0", vcpus=4) for i in range(5)]
    c = cluster(hosts, vms, cpu=1.0)
    p = plan("balance", c, COSTS, settings=FREE)
    assert p.moves and p.waves >= 1 and p.duration_p90_s >= p.duration_s > 0
    for m in p.moves:
        e = m.explanation
        assert len(e.alternatives) <= 1 + FREE.alternatives and e.alternatives[0].host_id == m.target_id
        assert e.hosts_assessed == 12 and e.hosts_eligible >= len(e.alternatives)
        assert "%" in e.why_vm and "score" in e.why_host and "total" in e.why_technique
        move = m.to_move()
        assert move.vm_id == m.vm_id and move.parameters.technique is m.cost.technique and move.reasons
    starts = [m.start_s for m in p.moves]
    assert starts == sorted(starts)


def test_a_pool_of_hosts_at_scale_and_a_full_scan_when_the_pool_has_no_room() -> None:
    hosts = [host(f"h{i:02d}") for i in range(40)]
    vms = [vm(f"v{i}", "h00", vcpus=2) for i in range(10)] + [vm(f"w{i}", f"h{i:02d}") for i in range(1, 40)]
    rules = [VmHostRule("far", frozenset({"v0"}), frozenset({"h39"}), on=True, must=True)]
    c = cluster(hosts, vms, cpu={**{f"v{i}": 1.0 for i in range(10)}, **{f"w{i}": 0.1 + i / 50 for i in range(40)}},
                rules=rules)
    settings = PlanSettings(churn=AntiChurn(max_moves=100), pool_size=8)
    p = plan("balance", c, COSTS, settings=settings, tolerance=0.0)
    assert p.moves
    pooled = [m for m in p.moves if m.vm_id != "v0"]
    assert pooled and all(m.explanation.hosts_assessed == 8 for m in pooled)
    assert "8 of 40 hosts assessed" in pooled[0].explanation.why_host
    far = [m for m in p.moves if m.vm_id == "v0"]
    assert not far or (far[0].target_id == "h39" and far[0].explanation.hosts_assessed == 40)


def test_the_registry_names_its_strategies_and_refuses_unknown_ones_and_parameters() -> None:
    assert set(strategy_names()) >= {"balance", "consolidate", "drain"}
    c = cluster([host("a")], [vm("v", "a")])
    with pytest.raises(KeyError, match="unknown strategy"):
        plan("shuffle", c, COSTS)
    with pytest.raises(TypeError, match="no parameter colour"):
        plan("balance", c, COSTS, colour="red")
    assert plan("balance", c, COSTS).moves == ()
    assert np.array_equal(plan("balance", c, COSTS).after.vm_host, c.vm_host)


@pytest.mark.parametrize("strategy", ["drain", "balance", "consolidate"])
def test_no_strategy_moves_a_vm_out_of_its_cluster(strategy: str) -> None:
    """Hosts a and b form cluster east, c and d west; a is crowded and busy, b is the only east host that can take
    its VMs; c and d are empty and more attractive (to spread or to pack), but in the other cluster."""
    labels = {"a": "east", "b": "east", "c": "west", "d": "west"}
    hosts = [host(h, labels={"cluster": labels[h]}) for h in "abcd"]
    vms = [vm(f"v{i}", "a", vcpus=4) for i in range(6)] + [vm("w", "b", vcpus=1)]
    c = cluster(hosts, vms, cpu=0.9, cluster_label="cluster")
    p = plan(strategy, c, COSTS, settings=FREE, **({"host": "a"} if strategy == "drain" else {}))
    assert p.moves or strategy == "consolidate", p.summary
    assert all(labels[m.target_id] == labels[m.source_id] for m in p.moves), [(m.vm_id, m.target_id) for m in p.moves]


def test_a_drain_is_priced_with_its_moves_sharing_the_hosts_link() -> None:
    hosts = [host("a"), *(host(f"t{k}") for k in range(4))]
    c = cluster(hosts, [vm(f"v{k}", "a", memory=8192) for k in range(4)])
    p = plan("drain", c, COSTS, settings=FREE, host="a")
    moves = sorted(p.moves, key=lambda m: m.start_s)
    alone, beside = moves[0].cost.total_time_ms.median, moves[1].cost.total_time_ms.median
    assert moves[1].start_s == 0 and beside > 1.9 * alone  # started beside the first: half the link, and more rounds
    assert {m.parameters.bandwidth_mib_s for m in moves} == {moves[0].parameters.bandwidth_mib_s}  # the whole link
    assert p.duration_s == pytest.approx(max(m.end_s for m in moves))
    assert f"Predicted end: about {p.duration_s:.0f} s (p90 {p.duration_p90_s:.0f} s)" in p.summary
    assert "sharing its link" in p.summary
