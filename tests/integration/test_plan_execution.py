"""A plan's moves executed one request each: idempotent per move, and the plan's state follows its moves
(the fake hypervisor; real migrations are in tests/lab/)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.app import App
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument
from advisor.domain.model import Host, Objective, PlanGoal, Vm
from advisor.domain.recommendation import Decision, RecommendationState
from tests.support import local_advisor

pytestmark = pytest.mark.integration


def wait_state(app: App, rec_id: str, state: RecommendationState) -> None:
    deadline = time.monotonic() + 10
    while app.usecases.review.get(rec_id).state is not state:
        assert time.monotonic() < deadline, app.usecases.review.get(rec_id).state
        time.sleep(0.02)


def test_a_drain_plan_executes_move_by_move(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b", "c"), gated=True)
    world.add_guest("v1", "a")
    world.add_guest("v2", "a")
    with local_advisor(tmp_path, world.connect, poll_interval_s=0.01) as app:
        uc = app.usecases
        uc.ingestion.push_inventory(InventoryChange(
            hosts=tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in ("a", "b", "c")),
            vms=(Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2)),
        ))
        plan = uc.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
        assert {m.vm_id for m in plan.moves} == {"v1", "v2"}
        uc.review.decide(plan.id, Decision.APPROVE, "alice", "")
        with pytest.raises(InvalidArgument, match="move_index"):
            uc.migrations.execute(plan.id, "alice", 2)
        first = uc.migrations.execute(plan.id, "alice", 0)
        assert uc.migrations.execute(plan.id, "bob", 0).operation_id == first.operation_id
        world.release.set()
        for _ in uc.migrations.watch(first.operation_id):
            pass
        assert uc.migrations.operation(first.operation_id).phase.value == "succeeded"
        assert uc.review.get(plan.id).state is RecommendationState.EXECUTING  # one move of two done
        second = uc.migrations.execute(plan.id, "alice", 1)
        assert second.operation_id != first.operation_id
        wait_state(app, plan.id, RecommendationState.SUCCEEDED)
        where = {g: world.host_of(g) for g in ("v1", "v2")}
        assert set(where.values()) <= {"b", "c"}
        hosts_after = {v.vm.id: v.vm.host_id for v in uc.queries.list_vms()[0]}
        assert hosts_after == where  # the inventory follows the moves


def wait_for(found: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not found():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_drain_move_priced_at_a_share_of_the_link_is_predicted_again_at_the_bandwidth_it_runs_at(
        tmp_path: Path) -> None:
    world = FakeWorld(("a", "b", "c"), gated=True)
    world.add_guest("v1", "a")
    world.add_guest("v2", "a")
    with local_advisor(tmp_path, world.connect, poll_interval_s=0.01) as app:
        uc = app.usecases
        uc.ingestion.push_inventory(InventoryChange(
            hosts=tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}", network_bandwidth_mib_s=100)
                        for h in ("a", "b", "c")),
            vms=(Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2)),
        ))
        plan = uc.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
        priced = [m.inputs.usable_bandwidth_mib_s if m.inputs else None for m in plan.moves]
        assert sorted(priced) == [50, 100]  # the second starts beside the first: half of a's link
        shared = priced.index(50)
        uc.review.decide(plan.id, Decision.APPROVE, "alice", "")
        # run alone, it gets a's whole link: its stored prediction is made again at 100 MiB/s by the served model
        op = uc.migrations.execute(plan.id, "alice", shared).operation_id
        # the new prediction, then its note in the timeline: two steps of the migration's own thread
        wait_for(lambda: any("predicted again at 100.0 MiB/s" in e.message
                             for e in uc.migrations.operation(op).timeline))
        ran = uc.migrations.operation(op)
        assert ran.predicted_mib_s == 100 and ran.parameters.bandwidth_mib_s == 100
        assert ran.inputs is not None and ran.inputs.usable_bandwidth_mib_s == 100
        planned = plan.moves[shared].predicted_cost
        assert ran.predicted.technique is planned.technique
        assert ran.predicted.total_time_ms.median < planned.total_time_ms.median
        assert ran.predicted.model == planned.model
        world.release.set()
        for _ in uc.migrations.watch(op):
            pass
        assert uc.migrations.operation(op).predicted_mib_s == 100  # kept to the end, beside the outcome
        # the other, priced alone and run alone, keeps the plan's prediction
        other = uc.migrations.execute(plan.id, "alice", 1 - shared).operation_id
        wait_state(app, plan.id, RecommendationState.SUCCEEDED)
        done = uc.migrations.operation(other)
        assert done.predicted == plan.moves[1 - shared].predicted_cost and done.predicted_mib_s == 100
