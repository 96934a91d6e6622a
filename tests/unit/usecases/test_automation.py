"""Automation levels as values: per cluster with the settings' defaults until set, overridden by a VM's label, the
least automatic VM deciding a recommendation's level, and what the advisor does by itself at each level."""

from __future__ import annotations

import pytest

from advisor.domain.automation import VM_LABEL, Level
from advisor.domain.errors import InvalidArgument
from advisor.domain.migration import Phase
from advisor.domain.model import Objective, Vm
from advisor.domain.recommendation import RecommendationState
from tests.unit.usecases.world import World, hosts, world

S = RecommendationState
EAST, WEST = {"cluster": "east"}, {"cluster": "west"}


def clustered(level: Level = Level.MANUAL, threshold: float = 0.0) -> World:
    w = world(level=level, threshold=threshold)
    w.push(hosts("a", "b", "c", labels={"a": EAST, "b": EAST, "c": WEST}),
           [Vm("v1", "a", 4096, 2), Vm("pinned", "a", 4096, 2, labels={VM_LABEL: "disabled"}),
            Vm("hands-off", "a", 4096, 2, labels={VM_LABEL: "manual"}), Vm("w1", "c", 4096, 2)])
    return w


def test_every_cluster_has_the_defaults_until_an_admin_sets_it() -> None:
    w = clustered(Level.PARTIAL, 1.5)
    assert [(s.cluster, s.level, s.min_benefit_over_cost) for s in w.automation.settings()] == [
        ("east", Level.PARTIAL, 1.5), ("west", Level.PARTIAL, 1.5)]
    w.clock.advance(5)
    set_ = w.automation.set("west", "full", 3.0, "carol")
    assert (set_.updated_by, set_.updated_at_s) == ("carol", w.clock())
    assert w.automation.of("west") == set_ and w.automation.of("east").level is Level.PARTIAL
    assert w.automation.of("nowhere").cluster == "nowhere"  # a cluster without hosts has the defaults too
    w.automation.set("south", "manual", 0.0, "carol")
    assert [s.cluster for s in w.automation.settings()] == ["east", "south", "west"]


def test_the_settings_follow_the_inventory_s_clusters_as_it_changes() -> None:
    w = clustered()
    assert [s.cluster for s in w.automation.settings()] == ["east", "west"]
    w.push(hosts("d", labels={"d": {"cluster": "north"}}), [])
    assert [s.cluster for s in w.automation.settings()] == ["east", "north", "west"]
    w.push(hosts("c", labels={"c": EAST}), [])  # west's only host joins east
    assert [s.cluster for s in w.automation.settings()] == ["east", "north"]


@pytest.mark.parametrize(("cluster", "level", "threshold", "error"), [
    ("east", "fully", 0.0, r"level: must be one of manual, partial, full \(got .fully.\)"),
    ("east", "full", -1.0, r"min_benefit_over_cost: must be in \[0, 1e\+06\] \(got -1.0\)"),
    ("east", "full", float("nan"), "min_benefit_over_cost: must be in"),
    ("", "full", 0.0, "cluster: is required"),
])
def test_a_setting_is_checked_before_it_is_stored(cluster: str, level: str, threshold: float, error: str) -> None:
    w = clustered()
    with pytest.raises(InvalidArgument, match=error):
        w.automation.set(cluster, level, threshold, "carol")
    assert w.store.automation() == []


def test_the_least_automatic_vm_decides_and_a_label_overrides_its_cluster() -> None:
    w = clustered(Level.FULL)
    vms, hosts_ = w.inventory.vms(), w.inventory.hosts()
    assert w.automation.level([vms["v1"]], hosts_) == (Level.FULL, "east")
    assert w.automation.level([vms["v1"], vms["hands-off"]], hosts_) == (Level.MANUAL, "east")
    assert w.automation.level([vms["w1"], vms["v1"]], hosts_) == (Level.FULL, "west")  # the first VM's cluster
    assert w.automation.level([vms["pinned"]], hosts_) == (Level.MANUAL, "east")  # opted out: never automatic
    assert w.automation.level([], hosts_) == (Level.MANUAL, "default")
    assert w.automation.opted_out() == {"pinned"}


def test_the_vms_opted_out_follow_every_inventory_change() -> None:
    """Kept between inventory changes, never past one: a label added, a VM pushed, a label removed."""
    w = clustered()
    assert w.automation.opted_out() == {"pinned"}
    w.push(vms=[Vm("v1", "a", 4096, 2, labels={VM_LABEL: "disabled"})])
    assert w.automation.opted_out() == {"pinned", "v1"}
    w.push(vms=[Vm("new", "b", 4096, 2, labels={VM_LABEL: "disabled"}), Vm("pinned", "a", 4096, 2)])
    assert w.automation.opted_out() == {"new", "v1"}


def test_at_full_automation_the_advisor_approves_and_runs_its_own_recommendation() -> None:
    w = clustered(Level.FULL)
    rec = w.advice.recommend_target("v1", Objective())
    assert (rec.automation, rec.cluster, rec.state) == ("full", "east", S.EXECUTING)
    assert rec.decided_by == "advisor (automation full, cluster east)"
    assert rec.run_requested_by == rec.decided_by and len(w.executor.submitted) == 1
    w.executor.end(w.executor.submitted[0], Phase.SUCCEEDED)
    assert w.review.get(rec.id).state is S.SUCCEEDED


def test_below_full_automation_a_recommendation_waits_for_a_person() -> None:
    w = clustered(Level.FULL)
    w.automation.set("east", "partial", 0.0, "carol")
    assert w.advice.recommend_target("v1", Objective()).state is S.PROPOSED
    w.automation.set("east", "full", 0.0, "carol")
    assert w.advice.recommend_target("hands-off", Objective()).state is S.PROPOSED  # its label says manual
    assert w.executor.submitted == []


def test_a_recommendation_that_cannot_run_is_left_as_stored() -> None:
    w = clustered(Level.FULL)
    rec = w.advice.recommend_target("v1", Objective())
    w.executor.end(w.executor.submitted[0], Phase.FAILED)
    failed = w.review.get(rec.id)
    assert failed.state is S.FAILED
    assert w.self_approval(failed) == failed  # approving again is refused: it says so in the log, no error


def test_the_settings_of_many_clusters_are_read_at_once() -> None:
    w = clustered()
    w.automation.set("west", "full", 3.0, "carol")
    reads = []
    stored = w.store.automation
    w.store.automation = lambda: reads.append(1) or stored()  # type: ignore[method-assign]
    each = w.automation.of_each(["east", "west", "east"])
    assert (each["east"].level, each["west"].level, each["west"].min_benefit_over_cost) == (
        Level.MANUAL, Level.FULL, 3.0)
    vms = w.inventory.vms()
    assert w.automation.level([vms["w1"], vms["v1"], vms["hands-off"]], w.inventory.hosts()) == (Level.MANUAL, "west")
    assert len(reads) == 2  # once each, not once per cluster or VM
