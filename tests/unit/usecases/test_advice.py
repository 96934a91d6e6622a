"""Advice for one VM as values: the cost of moving it, where to move it and why, where to place a new one; every
recommendation stored proposed with every host assessed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.model import Disk, HostSample, Objective, Technique, Vm, VmSample
from advisor.domain.recommendation import Decision, Recommendation, RecommendationState
from advisor.features.inputs import Overrides
from tests.unit.usecases.world import KNOBS, World, hosts, world

S = RecommendationState


@pytest.fixture
def w() -> World:
    """Host a is busy, b is full, c is nearly idle, d half busy; a 30 GiB VM fits on c or d only."""
    w = world()
    w.push(hosts("a", "b", "c", "d"), [Vm("v1", "a", 4096, 2), Vm("v2", "a", 4096, 2), Vm("big", "b", 30000, 2)])
    w.load({"a": 0.6, "b": 0.9, "c": 0.1, "d": 0.5})
    return w


def counted(w: World, goal: str) -> float | None:
    return w.metrics.registry.get_sample_value("advisor_recommendations_total", {"goal": goal})


def test_the_cost_of_a_move_is_predicted_for_each_technique_asked(w: World) -> None:
    every = w.advice.predict_cost("v1")
    assert {c.technique for c in every.costs} == set(Technique) and every.inputs.memory_mib == 4096
    two = w.advice.predict_cost("v1", "c", [Technique.POSTCOPY, Technique.PRECOPY, Technique.POSTCOPY],
                                Overrides(dirty_rate_mib_s=5.0))
    assert [c.technique for c in two.costs] == [Technique.POSTCOPY, Technique.PRECOPY]
    assert two.inputs.dirty_rate_mib_s == 5.0
    assert two.costs[1].downtime_ms.median < every.costs[[c.technique for c in every.costs].index(
        Technique.PRECOPY)].downtime_ms.median  # a slower writer converges sooner


@pytest.mark.parametrize(("call", "error"), [
    (lambda w: w.advice.predict_cost("nope"), NotFound),
    (lambda w: w.advice.predict_cost("v1", "nowhere"), NotFound),
    (lambda w: w.advice.predict_cost("v1", "a"), InvalidArgument),  # its own host: no move to cost
    (lambda w: w.advice.predict_cost("v1", overrides=Overrides(bandwidth_mib_s=0.0)), InvalidArgument),
    (lambda w: w.advice.predict_cost("v1", overrides=Overrides(max_downtime_ms=-1.0)), InvalidArgument),
    (lambda w: w.advice.recommend_target("v1", Objective(max_downtime_ms=float("inf"))), InvalidArgument),
    (lambda w: w.advice.recommend_target("v1", Objective(max_downtime_ms=0.0)), InvalidArgument),  # no "no limit"
    (lambda w: w.advice.recommend_target("v1", Objective(max_downtime_ms=0.5)), InvalidArgument),  # QEMU: >= 1 ms
    (lambda w: w.advice.predict_cost("v1", overrides=Overrides(max_downtime_ms=0.0001)), InvalidArgument),
    (lambda w: w.advice.recommend_target("v1", Objective(max_downtime_ms=-5.0), dry_run=True), InvalidArgument),
    (lambda w: w.advice.recommend_target("v1", Objective(), ["nowhere"]), NotFound),
    (lambda w: w.advice.recommend_target("", Objective()), InvalidArgument),
])
def test_what_a_client_sends_is_checked_first(w: World, call: Callable[[World], object],
                                               error: type[Exception]) -> None:
    with pytest.raises(error):
        call(w)
    assert w.review.page(None)[0] == []  # nothing stored


def test_a_recommendation_names_its_target_with_its_reasons_and_every_host_assessed(w: World) -> None:
    w.clock.advance(7)
    rec = w.advice.recommend_target("v1", Objective(max_downtime_ms=500))
    move = rec.moves[0]
    assert (rec.goal, rec.state, rec.created_at_s, move.source_host_id, move.target_host_id) == (
        "target:v1", RecommendationState.PROPOSED, w.clock(), "a", "c")
    why = move.reasons[0]  # then why not the others
    assert why.startswith("target c: the best of 2 eligible hosts, score ") and why.endswith("; 2 rejected")
    assert why.count("after the move") == why.count("score 0.225") == 1  # each said once
    assert any(r.startswith("inputs: 4096 MiB to copy") for r in move.reasons)
    assert any(r.startswith(f"chose {move.parameters.technique}") for r in move.reasons)
    assert move.parameters.max_downtime_ms <= 500
    assert rec.summary.startswith(f"Move v1 from a to c by {move.parameters.technique}")
    assert [f for f, _, _ in move.rejection_counts] and move.hosts_assessed == 4
    assert w.review.get(rec.id) == rec and counted(w, "target") == 1
    stored = w.store.list_assessments(rec.id, 0)
    assert stored is not None and {a.host_id for a in stored} == {"a", "b", "c", "d"}
    assert next(a.host_id for a in stored if a.eligible) == "c"


def test_excluded_hosts_are_not_chosen_and_no_target_says_why_each_host_was_refused(w: World) -> None:
    assert w.advice.recommend_target("v1", Objective(), ["c"]).moves[0].target_host_id == "d"
    with pytest.raises(FailedPrecondition, match=r"no eligible target for VM 'big' among 4 hosts \(.*"
                                                 r"excluded: 2 \(e.g. c"):
        w.advice.recommend_target("big", Objective(), ["c", "d"])


def test_a_move_off_a_host_in_maintenance_comes_first() -> None:
    w = world()
    w.push(hosts("a", "b", maintenance="a"), [Vm("v1", "a", 4096, 2)])
    rec = w.advice.recommend_target("v1", Objective())
    assert rec.priority.reason == "its host a is in maintenance" and rec.priority.level == 1


def test_a_new_vm_is_placed_by_the_advisor_only_at_partial_automation_or_more(w: World) -> None:
    advised = w.advice.place_vm(Vm("new-1", "", 4096, 2))
    assert (advised.host_id, advised.placed, advised.placed_by) == ("c", False, "")
    assert "a person decides" in advised.reasons[-1] and "new-1" not in w.inventory.vms()
    w.automation.set("default", "partial", 0.0, "carol")
    placed = w.advice.place_vm(Vm("new-1", "", 4096, 2), ["c"])
    assert placed.placed and placed.placed_by == "advisor (automation partial, cluster default)"
    assert placed.host_id == "d" and w.inventory.vms()["new-1"].host_id == placed.host_id
    with pytest.raises(FailedPrecondition, match="already in the inventory"):
        w.advice.place_vm(Vm("new-1", "", 4096, 2))
    with pytest.raises(FailedPrecondition, match="no host can take VM 'huge' among 4"):
        w.advice.place_vm(Vm("huge", "", 40000, 2))
    with pytest.raises(InvalidArgument, match=r"excluded_host_ids\[0\]"):
        w.advice.place_vm(Vm("new-2", "", 4096, 2), [""])
    with pytest.raises(NotFound, match=r"excluded_host_ids\[1\]"):  # a typo would exclude nothing
        w.advice.place_vm(Vm("new-2", "", 4096, 2), ["c", "cc"])


def test_a_vm_goes_only_where_its_networks_are_and_an_unknown_network_is_refused(w: World) -> None:
    a, _, c, d = hosts("a", "b", "c", "d")
    w.push((replace(a, networks=frozenset({"br0", "vlan-7"})), replace(d, networks=frozenset({"br0", "vlan-7"})),
            replace(c, networks=frozenset({"br0"}))), [Vm("net", "a", 4096, 2, networks=frozenset({"br0", "vlan-7"}))])
    rec = w.advice.recommend_target("net", Objective())
    assert rec.moves[0].target_host_id == "d"  # c is idler but lacks vlan-7
    # b lacks memory as well: each host is counted once, under the first filter refusing it
    assert [(f, n) for f, n, _ in rec.moves[0].rejection_counts] == [("current host", 1), ("memory", 1),
                                                                     ("network", 1)]
    placed = w.advice.place_vm(Vm("new-net", "", 4096, 2, networks=frozenset({"vlan-7"})))
    assert placed.host_id == "d"
    with pytest.raises(InvalidArgument, match="unknown network 'vlan-9': no host of the inventory offers it"):
        w.advice.place_vm(Vm("new-2", "", 4096, 2, networks=frozenset({"vlan-9"})))


def test_a_vm_with_local_disks_is_priced_with_their_copy_and_moves_them_where_they_fit(w: World) -> None:
    _, _, c, d = hosts("a", "b", "c", "d")
    disks = (Disk("vda", 20480.0, 8192.0, shared=False, write_rate_mib_s=2.0), Disk("vdb", 99999.0, 10.0, shared=True))
    w.push((replace(c, local_disk_free_mib=10_000.0), replace(d, local_disk_free_mib=30_000.0)),
           [Vm("disky", "a", 4096, 2, disks=disks)])
    shared = w.advice.predict_cost("v1", "d", [Technique.PRECOPY], Overrides(dirty_rate_mib_s=5.0)).costs[0]
    local = w.advice.predict_cost("disky", "d", [Technique.PRECOPY, Technique.COLD],
                                  Overrides(dirty_rate_mib_s=5.0))
    assert (local.inputs.local_disk_used_mib, local.inputs.local_disk_size_mib,
            local.inputs.disk_write_rate_mib_s) == (8192.0, 20480.0, 2.0)
    live, cold = local.costs
    # 8 GiB at about 119 MiB/s: more than a minute before memory starts
    assert live.total_time_ms.median > shared.total_time_ms.median + 60_000
    assert live.transferred_mib.median > 8192 + shared.transferred_mib.median
    assert "local disks: 8192 MiB in use copied first" in live.notes[-1]
    assert cold.downtime_ms.median > 60_000 and cold.transferred_mib.median > 8192  # copied while off
    rec = w.advice.recommend_target("disky", Objective(max_downtime_ms=300))
    move = rec.moves[0]
    assert move.target_host_id == "d" and move.parameters.migrate_disks == ("vda",)
    assert any("local disks 8192 MiB in use of 20480 MiB written at 2.0 MiB/s" in r for r in move.reasons)
    assert ("local disk space", 1, "c") in move.rejection_counts  # 20 GiB of local disks, 10 GiB free on c


def test_a_dry_run_recommends_without_storing_superseding_or_counting(w: World) -> None:
    kept = w.advice.recommend_target("v1", Objective())
    dry = w.advice.recommend_target("v1", Objective(), dry_run=True)
    assert dry.id == "" and dry.moves[0].target_host_id == "c"
    assert w.review.page(None)[0] == [w.review.get(kept.id)] and w.review.get(kept.id).state is S.PROPOSED
    assert counted(w, "target") == 1
    assert f"also moved by proposed recommendation {kept.id} (target:v1)" in dry.moves[0].reasons[-1]


def test_a_new_proposal_for_a_vm_supersedes_its_earlier_proposed_one(w: World) -> None:
    first = w.advice.recommend_target("v1", Objective())
    other = w.advice.recommend_target("v2", Objective())
    w.clock.advance(5)
    second = w.advice.recommend_target("v1", Objective(max_downtime_ms=500))
    old = w.review.get(first.id)
    assert (old.state, old.superseded_by) == (S.SUPERSEDED, second.id)
    assert old.history[-1].reason == f"superseded by {second.id}" and old.revision == 1  # by compare-and-set
    assert f"supersedes proposed recommendation {first.id} (target:v1)" in second.moves[0].reasons
    assert w.review.get(other.id).state is S.PROPOSED  # another VM's proposal stays
    assert [r.id for r in w.review.page(S.PROPOSED)[0]] == [second.id, other.id]


def test_an_approved_proposal_is_not_superseded_but_named(w: World) -> None:
    approved = w.review.decide(w.advice.recommend_target("v1", Objective()).id, Decision.APPROVE, "alice", "")
    again = w.advice.recommend_target("v1", Objective())
    assert w.review.get(approved.id).state is S.APPROVED
    assert again.moves[0].reasons[-1] == f"v1 is also moved by approved recommendation {approved.id} (target:v1)"


def test_the_downtime_limit_asked_for_is_the_one_enforced_and_shown(w: World) -> None:
    for limit in (300.0, 40.0):
        move = w.advice.recommend_target("v1", Objective(max_downtime_ms=limit), dry_run=True).moves[0]
        assert move.parameters.max_downtime_ms == limit and move.inputs is not None
        assert move.inputs.max_downtime_ms == limit
        assert any(f"allowed downtime {limit:.0f} ms" in r for r in move.reasons)
        assert move.predicted_cost.downtime_ms.high <= limit  # and the techniques that would break it say so:
        assert any(r.startswith("not ") and f"> limit {limit:.0f} ms" in r for r in move.reasons)


def test_of_two_proposals_asked_at_once_the_newer_supersedes_the_older(w: World,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The older one is stored after the newer looked for earlier proposals: once stored, the newer finds it."""
    older = replace(w.advice.recommend_target("v1", Objective(), dry_run=True), id="older")
    add = w.store.add_recommendation

    def meanwhile(rec: Recommendation, assessments: Any = None) -> None:
        if rec.id != older.id:
            add(older)
        add(rec, assessments)

    monkeypatch.setattr(w.store, "add_recommendation", meanwhile)
    w.clock.advance(1)
    newer = w.advice.recommend_target("v1", Objective())
    assert not any("supersedes" in r for r in newer.moves[0].reasons)  # it was not there to be named
    assert w.review.get("older").superseded_by == newer.id


@pytest.mark.parametrize(("vm_labels", "host_labels", "forbidden_clusters", "reason"), [
    ({"advisor.postcopy": "forbidden"}, {}, (), "post-copy forbidden by the VM's label advisor.postcopy=forbidden"),
    ({}, {"cluster": "east"}, ("east",),
     "post-copy forbidden in cluster east (setting technique_postcopy_forbidden_clusters)"),
], ids=["VM label", "cluster setting"])
def test_an_sre_forbids_postcopy_for_a_vm_or_a_cluster_and_the_reason_says_so(
        vm_labels: dict[str, str], host_labels: dict[str, str], forbidden_clusters: tuple[str, ...],
        reason: str) -> None:
    """The VMs' dirty rate is not measured: it is assumed as fast as the link, so pre-copy would not converge and
    post-copy is chosen where allowed."""
    w = world(technique=replace(KNOBS.technique, postcopy_forbidden_clusters=frozenset(forbidden_clusters)))
    w.push(hosts("a", "c", labels={"a": host_labels, "c": host_labels}),
           [Vm("free", "a", 4096, 2), Vm("kept", "a", 4096, 2, labels=vm_labels)])
    w.load({"a": 0.6, "c": 0.1})
    free = w.advice.recommend_target("free", Objective(), dry_run=True).moves[0]
    kept = w.advice.recommend_target("kept", Objective(), dry_run=True).moves[0]
    if not forbidden_clusters:
        assert free.parameters.technique is Technique.POSTCOPY
        assert not any("forbidden" in r for r in free.reasons)
    assert kept.parameters.technique is not Technique.POSTCOPY
    assert reason in kept.reasons


def test_a_busy_guest_whose_dirty_rate_reads_nothing_is_predicted_as_unknown(w: World) -> None:
    """Page sampling cannot see a guest rewriting the same values: busy vCPUs and a 0 reading make the rate
    unknown (as fast as the link moves), never idle; the same guest reading 0 while idle stays measured."""
    now = w.clock()
    w.ingestion.push_samples([], [VmSample("v1", now, cpu_utilization=0.95, dirty_rate_mib_s=0.0),
                                  VmSample("v2", now, cpu_utilization=0.05, dirty_rate_mib_s=0.0)])
    busy, idle = w.advice.predict_cost("v1", "c"), w.advice.predict_cost("v2", "c")
    assert not busy.inputs.dirty_rate_known and busy.inputs.dirty_rate_mib_s > 0
    assert "blind" in busy.inputs.dirty_rate_source or "unknown" in busy.inputs.dirty_rate_source
    assert idle.inputs.dirty_rate_known and idle.inputs.dirty_rate_mib_s == 0.0


def test_traffic_on_the_link_leaves_a_move_what_is_free(w: World) -> None:

    before = w.advice.predict_cost("v1", "c").inputs
    w.ingestion.push_samples([HostSample("a", w.clock(), network_tx_mib_s=before.bandwidth_mib_s / 2)], [])
    after = w.advice.predict_cost("v1", "c").inputs
    assert "no traffic sample" in before.bandwidth_source
    assert after.bandwidth_mib_s == pytest.approx(before.bandwidth_mib_s / 2) and "a sends" in after.bandwidth_source
    assert after.max_bandwidth_mib_s == before.max_bandwidth_mib_s  # the cap is the migration's, not the traffic's
