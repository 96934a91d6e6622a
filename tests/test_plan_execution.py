"""A plan's moves executed one request each: idempotent per move, and the plan's state follows its moves
(scripted hypervisors; real migrations are in tests/lab/)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument
from advisor.domain.model import Host, Objective, RecommendationState, Vm
from advisor.execution.executor import Executor
from advisor.metrics import AdvisorMetrics
from advisor.ml.predictor import AnalyticPredictor
from advisor.service import AdvisorService
from advisor.storage.sqlite import SqliteStore
from tests.test_executor import FakeHost, World


def wait_state(service: AdvisorService, rec_id: str, state: RecommendationState) -> None:
    deadline = time.monotonic() + 10
    while service.get_recommendation(rec_id).state is not state:
        assert time.monotonic() < deadline, service.get_recommendation(rec_id).state
        time.sleep(0.02)


def test_a_drain_plan_executes_move_by_move(tmp_path: Path) -> None:
    world = World(location={"v1": "a", "v2": "a"})
    hosts: dict[str, FakeHost] = {}
    service = AdvisorService(SqliteStore(tmp_path / "db.sqlite3"), AnalyticPredictor(),
                             AdvisorMetrics(CollectorRegistry()), clock=time.time)
    service.push_inventory(InventoryChange(
        hosts=tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in ("a", "b", "c")),
        vms=(Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2)),
    ))
    executor: Executor = service.attach_executor(
        lambda uri: hosts.setdefault(uri, FakeHost(world, uri.removeprefix("fake://"))),  # type: ignore[arg-type, return-value]
        poll_interval_s=0.01,
    )
    plan = service.plan_cluster("drain", "a", 0, Objective())
    assert {m.vm_id for m in plan.moves} == {"v1", "v2"}
    service.decide(plan.id, True, "alice", "")
    with pytest.raises(InvalidArgument, match="move_index"):
        service.execute(plan.id, "alice", 2)
    first = service.execute(plan.id, "alice", 0)
    assert service.execute(plan.id, "bob", 0).operation_id == first.operation_id
    world.release.set()
    for _ in executor.watch(first.operation_id, timeout_s=10):
        pass
    assert executor.get(first.operation_id).phase.value == "succeeded"
    assert service.get_recommendation(plan.id).state is RecommendationState.EXECUTING  # one move of two done
    second = service.execute(plan.id, "alice", 1)
    assert second.operation_id != first.operation_id
    wait_state(service, plan.id, RecommendationState.SUCCEEDED)
    assert set(world.location.values()) <= {"b", "c"}
    hosts_after = {v.vm.id: v.vm.host_id for v in service.list_vms()[0]}
    assert hosts_after == world.location  # the inventory follows the moves
    executor.stop()
