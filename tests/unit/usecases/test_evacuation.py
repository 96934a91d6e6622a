"""Evacuation plans as values: refused for a host that is up or cannot be judged (unless forced), and for a host
that is down, the restarts of its VMs in priority order with every VM that cannot be restarted named and why;
approved and run like any plan, its restarts are no training data."""

from __future__ import annotations

import pytest

from advisor.domain.errors import FailedPrecondition, InvalidArgument
from advisor.domain.evacuation import PRIORITY_LABEL, STORAGE_LABEL
from advisor.domain.migration import Phase
from advisor.domain.model import HostSample, MoveKind, Objective, PlanGoal, Vm
from advisor.domain.recommendation import Decision, RecommendationState
from advisor.physics.cold import restart_cost
from tests.unit.usecases.world import SETTINGS, World, hosts, world

DOWN_AFTER_S = SETTINGS.evacuate_host_down_after_s


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("a", "b", "c"), [
        Vm("low", "a", 4096, 2, labels={PRIORITY_LABEL: "-5"}),
        Vm("db", "a", 4096, 2, labels={PRIORITY_LABEL: "100"}),
        Vm("web", "a", 8192, 2),
        Vm("scratch", "a", 2048, 1, labels={STORAGE_LABEL: "local"}),
        Vm("new", "a", 2048, 1),  # never read from a hypervisor: no definition
        Vm("other", "b", 4096, 2),
    ])
    w.definitions.ids |= {"low", "db", "web", "scratch", "other"}
    return w


def evacuate(w: World, host: str = "a", **options: object):  # type: ignore[no-untyped-def]
    return w.planning.plan_cluster(PlanGoal.EVACUATE, host, 0, Objective(), **options)  # type: ignore[arg-type]


def hypervisor_dies(w: World, host: str = "a") -> None:
    """Every hypervisor answered; then `host`'s stops answering, long enough to be down."""
    for h in ("a", "b", "c"):
        w.signs.answered(h, w.clock())
    w.clock.advance(DOWN_AFTER_S + 15)
    for h in ("b", "c"):
        w.signs.answered(h, w.clock())
    w.signs.failed(host, w.clock(), "connection refused")


def test_a_host_that_is_down_gets_its_vms_restarted_by_priority_and_says_which_cannot(w: World) -> None:
    hypervisor_dies(w)
    plan = evacuate(w)
    assert (plan.goal, plan.state, plan.priority.level) == ("evacuate:a", RecommendationState.PROPOSED, 1)
    assert plan.priority.reason == "a is down: its VMs to restart"
    assert [m.vm_id for m in plan.moves] == ["db", "web", "low"]  # priority 100, 0 (8 GiB), -5
    assert all(m.parameters.kind is MoveKind.RESTART and m.target_host_id in ("b", "c") and m.inputs is None
               for m in plan.moves)
    assert plan.summary.startswith("a is down: its hypervisor has not answered for 75 s (last try 0 s ago: "
                                   "connection refused).")
    assert f"scratch (local storage: its disks are local to its host (label {STORAGE_LABEL}=local)" in plan.summary
    assert "new (no definition: the advisor never read its definition" in plan.summary
    assert plan.moves[0].reasons[-2:] == ("restart 1 of 3, in priority order",
                                          "wave 1, starts about 0 s into the plan")
    # each restart predicted by its steps (advisor.physics.cold.restart_cost): the same for every VM, nothing copied
    assert all(m.predicted_cost == restart_cost() for m in plan.moves)
    assert "defined, started and checked in about 3.1 s" in plan.summary


def test_a_host_that_is_up_is_refused_and_pointed_to_drain_unless_forced(w: World) -> None:
    w.signs.answered("a", w.clock() - 10)
    with pytest.raises(FailedPrecondition, match=r"a is up \(its hypervisor answered 10 s ago\).*drain it"):
        evacuate(w)
    forced = evacuate(w, force=True, dry_run=True)
    assert forced.id == "" and [m.vm_id for m in forced.moves] == ["db", "web", "low"]
    assert forced.summary.startswith("a taken as down by the caller's force (its hypervisor answered 10 s ago).")


def test_a_host_nothing_tells_about_cannot_be_judged(w: World) -> None:
    with pytest.raises(FailedPrecondition, match=r"cannot tell that a is down.*force the evacuation"):
        evacuate(w)
    assert w.review.page(None)[0] == []


def test_samples_that_stopped_tell_a_host_is_down_and_one_that_still_sends_them_is_up(w: World) -> None:
    w.ingestion.push_samples([HostSample(h, w.clock(), cpu_utilization=0.2) for h in ("a", "b")], [])
    w.clock.advance(DOWN_AFTER_S + 1)
    w.ingestion.push_samples([HostSample("b", w.clock(), cpu_utilization=0.2)], [])
    assert [m.vm_id for m in evacuate(w, dry_run=True).moves] == ["db", "web", "low"]
    with pytest.raises(FailedPrecondition, match="a sample of it arrived 0 s ago"):
        evacuate(w, host="b")


def test_other_hosts_found_down_take_nothing(w: World) -> None:
    hypervisor_dies(w)
    w.signs.answered("c", w.clock() - DOWN_AFTER_S - 30)
    w.signs.failed("c", w.clock(), "no route to host")
    plan = evacuate(w, dry_run=True)
    assert {m.target_host_id for m in plan.moves} == {"b"} and "Also down, so taking nothing: c." in plan.summary


def test_an_approved_evacuation_restarts_and_is_no_training_data(w: World) -> None:
    hypervisor_dies(w)
    plan = evacuate(w)
    approved = w.review.decide(plan.id, Decision.APPROVE, "alice", "")
    record = w.migrations.execute(approved.id, "alice", 0)
    assert record.parameters.kind is MoveKind.RESTART and record.vm_id == "db"
    w.executor.end(record.operation_id, Phase.SUCCEEDED)
    assert w.inventory.vms()["db"].host_id == plan.moves[0].target_host_id
    assert w.store.outcomes() == []  # a restart is not a migration to learn from
    assert w.metrics.registry.get_sample_value("advisor_migrations_total",
                                               {"technique": "restart", "outcome": "succeeded"}) == 1


def test_a_malformed_evacuation_label_is_refused_at_push(w: World) -> None:
    for labels, match in (({PRIORITY_LABEL: "high"}, "must be an integer"),
                          ({STORAGE_LABEL: "nfs"}, "must be one of shared, local")):
        with pytest.raises(InvalidArgument, match=match):
            w.push(vms=[Vm("x", "a", 1024, 1, labels=labels)])
