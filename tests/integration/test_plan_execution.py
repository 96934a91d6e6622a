"""A plan's moves executed one request each: idempotent per move, and the plan's state follows its moves
(the fake hypervisor; real migrations are in tests/lab/)."""

from __future__ import annotations

import time
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
