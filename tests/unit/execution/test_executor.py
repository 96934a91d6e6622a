"""The executor's own logic (queue, limits, idempotency, abort, failure handling) with the fake hypervisor
(advisor.adapters.fake_hypervisor). Real migrations are tested against the lab in tests/lab/."""

from __future__ import annotations

import threading
import time

import pytest

from advisor.adapters.fake_hypervisor import FakeHypervisor, FakeWorld
from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.migration import MigrationRecord, Phase, Progress
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.execution.executor import ConcurrencyLimits, Executor, HostEndpoint
from advisor.execution.hypervisor import MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver

HOSTS = ("a", "b", "t", *(f"t{i}" for i in range(5)), *(f"s{i}" for i in range(4)))


def world_of(location: dict[str, str], *, fail_polls: bool = False) -> FakeWorld:
    """Guests where `location` says; migrations wait for `world.release` (a gated world)."""
    world = FakeWorld(HOSTS, gated=True)
    for guest, host in location.items():
        world.add_guest(guest, host)
    world.fail_polls = fail_polls
    return world


COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))


def move(vm: str, src: str, dst: str) -> Move:
    params = MigrationParameters(Technique.PRECOPY, 100, 300, postcopy_after_ms=None, deadline_ms=60_000)
    return Move(vm, src, dst, params, COST, ())


def make(
    world: FakeWorld, limits: ConcurrencyLimits | None = None
) -> tuple[Executor, MemoryMigrationStore, RecordingObserver]:
    def endpoint(host_id: str) -> HostEndpoint:
        if host_id == "ghost":
            raise NotFound("host_id", "host", host_id)
        uri = f"fake://{host_id}"
        return HostEndpoint(lambda: world.connect(uri), MigrationTarget(uri))

    store, observer = MemoryMigrationStore(), RecordingObserver()
    executor = Executor(store, endpoint, observer, limits=limits or ConcurrencyLimits(), poll_interval_s=0.01)
    executor.start()
    return executor, store, observer


def wait_final(executor: Executor, op: str, timeout_s: float = 10) -> MigrationRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = executor.get(op)
        if record.phase.final:
            return record
        time.sleep(0.01)
    raise AssertionError(f"{op} did not end: {executor.get(op)}")


def test_a_migration_runs_to_success_and_the_same_recommendation_never_runs_twice() -> None:
    world = world_of({"vm1": "a"})
    executor, _, observer = make(world)
    first = executor.submit("rec-1", move("vm1", "a", "b"), actor="alice")
    second = executor.submit("rec-1", move("vm1", "a", "b"), actor="bob")
    assert second.operation_id == first.operation_id
    world.release.set()
    record = wait_final(executor, first.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert record.outcome is not None and record.outcome.downtime_ms == 20
    assert "guest runs on target b" in record.message
    assert world.calls.count("migrate vm1") == 1
    assert [r.operation_id for r in observer.ended] == [first.operation_id]
    assert executor.submit("rec-1", move("vm1", "a", "b"), actor="carol").operation_id == first.operation_id


def test_limits_queue_the_excess_and_release_it_in_order() -> None:
    world = world_of({f"vm{i}": "a" for i in range(5)})
    executor, _, _ = make(world, ConcurrencyLimits(per_cluster=5, per_source=2, per_target=5))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", "a", f"t{i}"), actor="x").operation_id for i in range(5)]
    time.sleep(0.2)
    assert world.running == 2
    assert [executor.get(op).phase for op in ops].count(Phase.QUEUED) == 3
    world.release.set()
    assert all(wait_final(executor, op).phase is Phase.SUCCEEDED for op in ops)
    assert world.most_running == 2


def test_inbound_limit_per_target() -> None:
    world = world_of({f"vm{i}": f"s{i}" for i in range(4)})
    executor, _, _ = make(world, ConcurrencyLimits(per_cluster=5, per_source=5, per_target=1))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", f"s{i}", "t"), actor="x").operation_id for i in range(4)]
    time.sleep(0.2)
    assert world.running == 1
    world.release.set()
    for op in ops:
        wait_final(executor, op)
    assert world.most_running == 1


def test_abort_of_a_running_and_of_a_queued_migration() -> None:
    world = world_of({"vm1": "a", "vm2": "a"})
    executor, _, _ = make(world, ConcurrencyLimits(per_cluster=1))
    running = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    queued = executor.submit("rec-2", move("vm2", "a", "b"), actor="x").operation_id
    time.sleep(0.1)
    assert executor.abort(queued, "changed plan").phase is Phase.ABORTED
    executor.abort(running, "operator said so")
    record = wait_final(executor, running)
    assert record.phase is Phase.ABORTED
    assert "guest runs on source a" in record.message
    assert "abort vm1" in world.calls
    with pytest.raises(FailedPrecondition, match="already ended"):
        executor.abort(running, "again")


def test_monitoring_failure_aborts_the_job() -> None:
    world = world_of({"vm1": "a"}, fail_polls=True)
    executor, _, _ = make(world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    record = wait_final(executor, op)
    assert record.phase is Phase.ABORTED
    assert any("monitoring failed" in e.message for e in record.timeline)


def test_an_unknown_host_fails_the_operation_with_the_reason() -> None:
    executor, _, _ = make(world_of({}))
    op = executor.submit("rec-1", move("vm1", "ghost", "b"), actor="x").operation_id
    record = wait_final(executor, op)
    assert record.phase is Phase.FAILED and "unknown host 'ghost'" in record.message


def test_watch_streams_until_the_end() -> None:
    world = world_of({"vm1": "a"})
    executor, _, _ = make(world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    threading.Timer(0.2, world.release.set).start()
    phases = [w.record.phase for w in executor.watch(op, timeout_s=10)]
    assert phases[-1] is Phase.SUCCEEDED
    assert Phase.PRECOPY in phases
    (final,) = [w.record.phase for w in executor.watch(op)]
    assert final is Phase.SUCCEEDED


def test_restart_reconciles_an_unfinished_record_with_where_the_guest_runs() -> None:
    world = world_of({"vm1": "b"})  # the guest arrived while the advisor was down
    executor, store, _ = make(world)
    rec = executor.submit("rec-1", move("vm1", "a", "b"), actor="x")
    executor.stop()
    # Pretend the previous run died mid-migration: the record says pre-copy, no job runs any more.
    store.records[rec.operation_id] = MigrationRecord(**{**rec.__dict__, "phase": Phase.PRECOPY})

    class Quiet(FakeHypervisor):
        def progress(self, guest: str) -> Progress | None:
            return None

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Quiet(world, host_id), MigrationTarget(f"fake://{host_id}"))

    restarted = Executor(store, endpoint, RecordingObserver(), poll_interval_s=0.01)
    restarted.start()
    record = wait_final(restarted, rec.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert "reconciled after restart: guest runs on target b" in record.message


def test_a_refused_switch_to_postcopy_is_asked_again_not_dropped() -> None:
    """QEMU refuses migrate-start-postcopy until the job is under way: the planned post-copy is asked again at
    the next poll rather than left to run as a pre-copy."""
    world = world_of({"vm1": "a"})
    world.migration_s = 0.5
    world.refuse_postcopy = 2
    executor, _, _ = make(world)
    params = MigrationParameters(Technique.POSTCOPY, 100, 300, postcopy_after_ms=0.0, deadline_ms=60_000)
    op = executor.submit("rec-pc", Move("vm1", "a", "b", params, COST, ()), actor="alice")
    world.release.set()
    record = wait_final(executor, op.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert world.calls.count("postcopy") == 1 and world.refuse_postcopy == 0
    notes = [e.message for e in record.timeline]
    assert sum("action failed" in n for n in notes) == 2 and any("in post-copy" in n for n in notes)
