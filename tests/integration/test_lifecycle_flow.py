"""The lifecycle end to end through the advisor as `advisor serve` wires it, on real SQLite, the real executor and
the fake hypervisor: the periodic expiry sweep, retries, runs in order, cancelling a running plan, restarts, and
full automation. The same rules as values, one use case at a time, are in tests/unit/usecases/."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.app import App
from advisor.domain.automation import VM_LABEL
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import FailedPrecondition
from advisor.domain.model import Host, Objective, PlanGoal, Vm
from advisor.domain.recommendation import Decision, MoveState, RecommendationState, StartMove
from advisor.usecases.records import apply_event
from tests.support import local_advisor

pytestmark = pytest.mark.integration

S = RecommendationState


def hosts(*names: str, maintenance: str = "") -> tuple[Host, ...]:
    return tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}", in_maintenance=h == maintenance) for h in names)


@contextmanager
def advisor(tmp_path: Path, world: FakeWorld, **settings: object) -> Iterator[App]:
    with local_advisor(tmp_path, world.connect, poll_interval_s=0.01, **settings) as app:
        yield app


def wait_state(app: App, rec_id: str, *states: RecommendationState) -> None:
    deadline = time.monotonic() + 10
    while (state := app.usecases.review.get(rec_id).state) not in states:
        assert time.monotonic() < deadline, state
        time.sleep(0.02)


def setup(app: App, world: FakeWorld, vms: dict[str, str], **labels: dict[str, str]) -> None:
    for name, host in vms.items():
        if world.host_of(name) is None:
            world.add_guest(name, host)
    app.usecases.ingestion.push_inventory(InventoryChange(
        hosts=hosts(*world.hosts), vms=tuple(Vm(n, h, 4096, 2, labels=labels.get(n, {})) for n, h in vms.items())))


def test_old_proposals_are_swept_by_the_advisors_periodic_expiry(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b", "c"))
    now = [1000.0]
    with advisor(tmp_path, world, clock=lambda: now[0], recommendation_max_age_s=600,
                 expiry_check_interval_s=0.01) as app:
        setup(app, world, {"v1": "a"})
        old = app.usecases.advice.recommend_target("v1", Objective())
        uc = app.usecases
        now[0] += 601
        sweep = next(c for c in app.leader_tasks if c.name == "expiry")
        sweep.start()  # the periodic sweep, as the advisor runs it
        wait_state(app, old.id, S.EXPIRED)
        sweep.stop()
        swept = uc.review.get(old.id)
        assert swept.state is S.EXPIRED and "made 10 min ago" in swept.expiry_reason


def test_a_failed_move_is_retried_as_a_new_attempt(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b"))
    with advisor(tmp_path, world) as app:
        setup(app, world, {"v1": "a"})
        uc = app.usecases
        rec = uc.advice.recommend_target("v1", Objective())
        uc.review.decide(rec.id, Decision.APPROVE, "alice", "")
        world.guests.pop("v1")  # the hypervisor does not know the guest: the migration fails
        first = uc.migrations.execute(rec.id, "alice")
        wait_state(app, rec.id, S.FAILED)
        assert uc.migrations.execute(rec.id, "bob").operation_id == first.operation_id  # idempotent, no retry
        world.add_guest("v1", "a")
        second = uc.migrations.execute(rec.id, "bob", retry=True)
        assert (second.attempt, first.attempt) == (2, 1) and second.operation_id != first.operation_id
        wait_state(app, rec.id, S.SUCCEEDED)
        done = uc.review.get(rec.id)
        assert done.status(0).attempts == 2 and done.status(0).operation_id == second.operation_id
        history, _ = uc.migrations.page(running=False)
        assert [r.operation_id for r in history] == [second.operation_id, first.operation_id]
        assert [h.state for h in done.history] == [S.APPROVED, S.EXECUTING, S.FAILED, S.EXECUTING, S.SUCCEEDED]
        with pytest.raises(FailedPrecondition, match="is succeeded: its moves can no longer start"):
            uc.migrations.execute(rec.id, "bob", retry=True)


def test_a_drain_runs_in_order_and_cancelling_it_drops_what_has_not_started(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b", "c"), gated=True)
    with advisor(tmp_path, world) as app:
        setup(app, world, {"v1": "a", "v2": "a", "v3": "a"})
        uc = app.usecases
        plan = uc.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
        assert len(plan.moves) == 3 and plan.priority.level == 1
        uc.review.decide(plan.id, Decision.APPROVE, "alice", "")
        running = uc.migrations.run(plan.id, "alice")
        assert [s.state for s in running.statuses()] == [MoveState.RUNNING, MoveState.WAITING, MoveState.WAITING]
        assert running.run_requested_by == "alice"
        cancelling = uc.migrations.cancel(plan.id, "bob", "change freeze")
        assert cancelling.cancel_requested  # the running pre-copy is being aborted
        wait_state(app, plan.id, S.CANCELLED)
        cancelled = uc.review.get(plan.id)
        assert [s.state for s in cancelled.statuses()] == [MoveState.ABORTED, MoveState.DROPPED, MoveState.DROPPED]
        assert {world.host_of(v) for v in ("v1", "v2", "v3")} == {"a"}  # nothing moved
        with pytest.raises(FailedPrecondition, match="nothing left to cancel"):
            uc.migrations.cancel(plan.id, "bob", "again")

        again = uc.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
        uc.review.decide(again.id, Decision.APPROVE, "alice", "")
        world.release.set()
        uc.migrations.run(again.id, "alice")
        wait_state(app, again.id, S.SUCCEEDED)
        ops = sorted(uc.migrations.page(running=False)[0], key=lambda r: r.created_at_s)[-3:]
        assert [r.move_index for r in ops] == [0, 1, 2]  # one after the other, in the plan's order
        for before, after in itertools.pairwise(ops):
            assert before.finished_at_s is not None and before.finished_at_s <= after.created_at_s


def test_a_move_started_but_never_handed_to_the_executor_fails_at_restart(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b"))
    with advisor(tmp_path, world) as app:
        setup(app, world, {"v1": "a"})
        rec = app.usecases.advice.recommend_target("v1", Objective())
        app.usecases.review.decide(rec.id, Decision.APPROVE, "alice", "")
        apply_event(app.store, rec.id, StartMove(0, "lost-op"), "alice", time.time())  # then the advisor died
    with advisor(tmp_path, world) as app:
        app.usecases.migrations.reconcile()
        after = app.usecases.review.get(rec.id)
        assert after.state is S.FAILED and after.status(0).state is MoveState.FAILED
        op = app.usecases.migrations.execute(rec.id, "alice", retry=True)
        wait_state(app, rec.id, S.SUCCEEDED)
        assert op.attempt == 2


def test_full_automation_executes_its_own_recommendations_within_its_limits(tmp_path: Path) -> None:
    world = FakeWorld(("a", "b"))
    with advisor(tmp_path, world, automation_level="full") as app:
        setup(app, world, {"v1": "a", "v2": "a"}, v2={VM_LABEL: "manual"})
        uc = app.usecases
        rec = uc.advice.recommend_target("v1", Objective())
        assert rec.automation == "full" and rec.cluster == "default"
        wait_state(app, rec.id, S.SUCCEEDED)
        done = uc.review.get(rec.id)
        assert done.decided_by == "advisor (automation full, cluster default)"
        assert world.host_of("v1") == "b"
        manual = uc.advice.recommend_target("v2", Objective())  # its label overrides the cluster
        assert manual.automation == "manual" and uc.review.get(manual.id).state is S.PROPOSED
        uc.automation.set("default", "manual", 0.0, "carol")
        assert uc.advice.recommend_target("v1", Objective()).state is S.PROPOSED
        assert [(s.cluster, s.level, s.updated_by) for s in uc.automation.settings()] == [
            ("default", "manual", "carol")]
