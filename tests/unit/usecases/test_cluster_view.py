"""The cluster view as values: each host's load now and after a recommendation's moves (as the planner counts
it), its VMs, and the operations into and out of it, running and recent."""

from __future__ import annotations

import pytest

from advisor.domain.errors import NotFound
from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import (
    Disk,
    Host,
    Move,
    Vm,
)
from advisor.domain.recommendation import Recommendation
from advisor.planning.engine import ClusterArrays, from_domain
from advisor.usecases.cluster_view import ClusterView
from tests.support.values import COST, PARAMETERS

HOST_CPU = {"a": 0.5, "b": 0.25, "c": 0.0}  # each host's latest CPU sample


def cluster(host_cpu: dict[str, float] = HOST_CPU) -> ClusterArrays:
    hosts = [Host("a", 8, 16384, networks=frozenset({"vlan10", "br0"}), local_disk_free_mib=50_000),
             Host("b", 8, 16384, networks=frozenset({"br0"}), local_disk_free_mib=30_000),
             Host("c", 4, 8192, in_maintenance=True)]
    local = (Disk("vda", 10_000, 4_000, False), Disk("vdb", 100_000, 90_000, True))  # vdb is shared: not copied
    vms = [Vm("v1", "a", 4096, 4, disks=local), Vm("v2", "a", 2048, 2), Vm("v3", "b", 8192, 2)]
    return from_domain(hosts, vms, host_cpu, {"v1": 0.5, "v2": 1.0, "v3": 0.5})


def move(vm: str, source: str, target: str) -> Move:
    return Move(vm, source, target, PARAMETERS, COST, ("why",))


def operation(op: str, vm: str, source: str, target: str, phase: Phase) -> MigrationRecord:
    return MigrationRecord(op, "r", vm, source, target, PARAMETERS, COST, 1.0, phase)


RECS = {
    "plan": Recommendation("plan", "drain a", 1.0, (move("v1", "a", "b"), move("v2", "a", "c")), "drain"),
    # v3 is on b already; host x is gone: neither move counts
    "stale": Recommendation("stale", "target:v3", 1.0, (move("v3", "a", "b"), move("v1", "a", "x")), "old"),
}
OPERATIONS = [operation("op3", "v2", "b", "a", Phase.PRECOPY), operation("op2", "v1", "b", "a", Phase.SUCCEEDED),
              operation("op1", "v3", "a", "b", Phase.FAILED)]


def get(rec_id: str) -> Recommendation:
    if rec_id not in RECS:
        raise NotFound("recommendation_id", "recommendation", rec_id)
    return RECS[rec_id]


def view(host_cpu: dict[str, float] = HOST_CPU) -> ClusterView:
    return ClusterView(lambda: cluster(host_cpu), get,
                       lambda running, n: [o for o in OPERATIONS[:n] if o.phase.final != running],
                       lambda ids: {h: host_cpu.get(h, float("nan")) for h in ids})


def test_every_host_with_its_load_vms_and_operations_now() -> None:
    found = view().loads()
    assert found.recommendation is None and (found.moves_applied, found.moves_skipped) == (0, 0)
    a, b, c = found.hosts
    assert [h.host_id for h in found.hosts] == ["a", "b", "c"] and c.disabled and not a.disabled
    # a: measured 4 of 8 cores busy; 6 GiB of 16 allocated; b: 2 of 8, 8 of 16 GiB
    assert (a.cpu_ratio, a.memory_ratio, a.vm_count, a.vm_ids) == (0.5, 0.375, 2, ("v1", "v2"))
    assert (b.cpu_ratio, b.memory_ratio, b.vm_ids) == (0.25, 0.5, ("v3",))
    assert (c.cpu_ratio, c.memory_ratio, c.vm_count, c.vm_ids) == (0.0, 0.0, 0, ())
    assert (a.cpu_measured_ratio, b.cpu_measured_ratio, c.cpu_measured_ratio) == (0.5, 0.25, 0.0)
    assert a.cpu_ratio_after is None and a.vm_count_after is None
    assert [r.operation_id for r in a.running] == ["op3"] == [r.operation_id for r in b.running]
    assert [r.operation_id for r in a.recent] == ["op2", "op1"] == [r.operation_id for r in b.recent]
    assert c.running == () and c.recent == ()
    assert (a.networks, b.networks, c.networks) == (("br0", "vlan10"), ("br0",), ())
    assert (a.disk_free_mib, b.disk_free_mib, c.disk_free_mib) == (50_000, 30_000, None)  # c: not reported
    assert a.disk_free_mib_after is None and a.moves_in == a.moves_out == ()


def test_after_a_plan_its_moves_are_applied_in_order() -> None:
    found = view().loads("plan")
    assert found.recommendation is RECS["plan"] and (found.moves_applied, found.moves_skipped) == (2, 0)
    a, b, c = found.hosts
    assert (a.cpu_ratio_after, a.memory_ratio_after, a.vm_count_after) == (0.0, 0.0, 0)
    assert (b.cpu_ratio_after, b.memory_ratio_after, b.vm_count_after) == (0.5, 0.75, 2)  # v1: 2 cores, 4 GiB
    assert (c.cpu_ratio_after, c.memory_ratio_after, c.vm_count_after) == (0.5, 0.25, 1)  # v2: 2 cores, 2 GiB
    assert (a.cpu_ratio, a.vm_count) == (0.5, 2)  # "now" unchanged
    plan = RECS["plan"].moves
    assert (a.moves_out, a.moves_in, b.moves_in, c.moves_in) == (plan, (), plan[:1], plan[1:])
    # v1's local disk (10,000 MiB virtual) is copied to b; a keeps its image; c's free space is unknown
    assert (a.disk_free_mib_after, b.disk_free_mib_after, c.disk_free_mib_after) == (50_000, 20_000, None)


def test_after_a_dry_run_plan_that_no_store_holds() -> None:
    dry = Recommendation("", "drain b", 1.0, (move("v3", "b", "a"),), "drain")
    found = view().after(dry)
    assert found.recommendation is dry and (found.moves_applied, found.moves_skipped) == (1, 0)
    a, b, _ = found.hosts
    assert (a.vm_count_after, b.vm_count_after, b.memory_ratio_after) == (3, 0, 0.0)
    assert (a.moves_in, b.moves_out) == (dry.moves, dry.moves)
    assert view().after(None) == view().loads()


def test_moves_made_already_or_impossible_are_skipped_and_counted() -> None:
    found = view().loads("stale")
    assert (found.moves_applied, found.moves_skipped) == (0, 2)
    assert [(h.cpu_ratio_after, h.vm_count_after) for h in found.hosts] == [(0.5, 2), (0.25, 1), (0.0, 0)]
    assert all(h.moves_in == h.moves_out == () for h in found.hosts)


def test_an_unknown_recommendation_is_not_found() -> None:
    with pytest.raises(NotFound):
        view().loads("nosuch")


def test_the_host_sample_is_shown_beside_the_planner_count_when_its_vms_measure_more() -> None:
    # a's sample says 2 of 8 cores busy, its VMs' samples 4 (v1 2 of 4, v2 2 of 2): the planner counts the 4
    a, _, c = view({"a": 0.25, "b": 0.25}).loads("plan").hosts
    assert (a.cpu_measured_ratio, a.cpu_ratio, a.cpu_ratio_after) == (0.25, 0.5, 0.0)
    assert c.cpu_measured_ratio is None and c.cpu_ratio == 0.0  # never sampled; no VM on it
