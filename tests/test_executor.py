"""The executor's own logic (queue, limits, idempotency, abort, failure handling) with a scripted fake
hypervisor. Real migrations are tested against the lab in tests/lab/."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.execution.executor import ConcurrencyLimits, Executor, HostEndpoint
from advisor.execution.hypervisor import GuestFacts, HostFacts, HypervisorError, MigrationResult, MigrationTarget
from advisor.execution.monitor import Phase, Progress
from advisor.execution.records import MigrationRecord


@dataclass
class World:
    """Where each guest runs, shared by the fake hosts; a migration moves it when it succeeds."""

    location: dict[str, str] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    fail_polls: bool = False
    running: int = 0
    most_running: int = 0
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeHost:
    def __init__(self, world: World, name: str) -> None:
        self.world, self.name, self.aborted = world, name, threading.Event()

    @property
    def uri(self) -> str:
        return f"fake://{self.name}"

    def host_facts(self) -> HostFacts:
        return HostFacts(self.name, self.name, 4, 4096, "m")

    def guests(self) -> list[GuestFacts]:
        return [GuestFacts(g, g, 128, 1, True) for g, h in self.world.location.items() if h == self.name]

    def measure_dirty_rate(self, guest: str, seconds: int = 1) -> float:
        return 0.0

    def migrate(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        with self.world.lock:
            self.world.running += 1
            self.world.most_running = max(self.world.most_running, self.world.running)
            self.world.calls.append(f"migrate {guest}")
        try:
            while not self.world.release.wait(0.01):
                if self.aborted.is_set():
                    return MigrationResult(False, error="operation aborted: canceled by client")
            self.world.location[guest] = target.uri.removeprefix("fake://")
            return MigrationResult(True, total_time_ms=1000, downtime_ms=20, transferred_mib=130, iterations=3)
        finally:
            with self.world.lock:
                self.world.running -= 1

    def progress(self, guest: str) -> Progress | None:
        if self.world.fail_polls:
            raise HypervisorError("connection reset")
        return Progress(100, 128, 64, 1, 100, 1)

    def set_max_downtime(self, guest: str, downtime_ms: float) -> None:
        self.world.calls.append(f"downtime {downtime_ms:.0f}")

    def set_max_speed(self, guest: str, mib_s: float) -> None: ...

    def start_postcopy(self, guest: str) -> None:
        self.world.calls.append("postcopy")

    def abort(self, guest: str) -> None:
        self.world.calls.append(f"abort {guest}")
        self.aborted.set()

    def close(self) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self.records: dict[str, MigrationRecord] = {}

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        for r in self.records.values():
            if r.recommendation_id == record.recommendation_id:
                return r
        self.records[record.operation_id] = record
        return record

    def save_migration(self, record: MigrationRecord) -> None:
        self.records[record.operation_id] = record

    def get_migration(self, operation_id: str) -> MigrationRecord | None:
        return self.records.get(operation_id)

    def unfinished_migrations(self) -> list[MigrationRecord]:
        return [r for r in self.records.values() if not r.phase.final]


class Observer:
    def __init__(self) -> None:
        self.finished_records: list[MigrationRecord] = []

    def progress(self, record: MigrationRecord, progress: Progress) -> None: ...

    def finished(self, record: MigrationRecord) -> None:
        self.finished_records.append(record)


COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))


def move(vm: str, src: str, dst: str) -> Move:
    params = MigrationParameters(Technique.PRECOPY, 100, 300, postcopy_after_ms=None, deadline_ms=60_000)
    return Move(vm, src, dst, params, COST, ())


def make(world: World, limits: ConcurrencyLimits | None = None) -> tuple[Executor, MemoryStore, Observer]:
    hosts: dict[str, FakeHost] = {}

    def endpoint(host_id: str) -> HostEndpoint:
        if host_id == "ghost":
            raise NotFound("host_id", "host", host_id)
        host = hosts.setdefault(host_id, FakeHost(world, host_id))
        return HostEndpoint(lambda: host, MigrationTarget(f"fake://{host_id}"))

    store, observer = MemoryStore(), Observer()
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
    world = World(location={"vm1": "a"})
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
    assert [r.operation_id for r in observer.finished_records] == [first.operation_id]
    assert executor.submit("rec-1", move("vm1", "a", "b"), actor="carol").operation_id == first.operation_id


def test_limits_queue_the_excess_and_release_it_in_order() -> None:
    world = World(location={f"vm{i}": "a" for i in range(5)})
    executor, _, _ = make(world, ConcurrencyLimits(per_cluster=5, per_source=2, per_target=5))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", "a", f"t{i}"), actor="x").operation_id for i in range(5)]
    time.sleep(0.2)
    assert world.running == 2
    assert [executor.get(op).phase for op in ops].count(Phase.QUEUED) == 3
    world.release.set()
    assert all(wait_final(executor, op).phase is Phase.SUCCEEDED for op in ops)
    assert world.most_running == 2


def test_inbound_limit_per_target() -> None:
    world = World(location={f"vm{i}": f"s{i}" for i in range(4)})
    executor, _, _ = make(world, ConcurrencyLimits(per_cluster=5, per_source=5, per_target=1))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", f"s{i}", "t"), actor="x").operation_id for i in range(4)]
    time.sleep(0.2)
    assert world.running == 1
    world.release.set()
    for op in ops:
        wait_final(executor, op)
    assert world.most_running == 1


def test_abort_of_a_running_and_of_a_queued_migration() -> None:
    world = World(location={"vm1": "a", "vm2": "a"})
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
    world = World(location={"vm1": "a"}, fail_polls=True)
    executor, _, _ = make(world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    record = wait_final(executor, op)
    assert record.phase is Phase.ABORTED
    assert any("monitoring failed" in e.message for e in record.timeline)


def test_an_unknown_host_fails_the_operation_with_the_reason() -> None:
    executor, _, _ = make(World())
    op = executor.submit("rec-1", move("vm1", "ghost", "b"), actor="x").operation_id
    record = wait_final(executor, op)
    assert record.phase is Phase.FAILED and "unknown host 'ghost'" in record.message


def test_watch_streams_until_the_end() -> None:
    world = World(location={"vm1": "a"})
    executor, _, _ = make(world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    threading.Timer(0.2, world.release.set).start()
    phases = [record.phase for record, _ in executor.watch(op, timeout_s=10)]
    assert phases[-1] is Phase.SUCCEEDED
    assert Phase.PRECOPY in phases
    (final,) = [p for p, _ in [(r.phase, q) for r, q in executor.watch(op)]]
    assert final is Phase.SUCCEEDED


def test_restart_reconciles_an_unfinished_record_with_where_the_guest_runs() -> None:
    world = World(location={"vm1": "b"})  # the guest arrived while the advisor was down
    executor, store, _ = make(world)
    rec = executor.submit("rec-1", move("vm1", "a", "b"), actor="x")
    executor.stop()
    # Pretend the previous run died mid-migration: the record says pre-copy, no job runs any more.
    store.records[rec.operation_id] = MigrationRecord(**{**rec.__dict__, "phase": Phase.PRECOPY})

    class Quiet(FakeHost):
        def progress(self, guest: str) -> Progress | None:
            return None

    def endpoint(host_id: str) -> HostEndpoint:
        host = Quiet(world, host_id)
        return HostEndpoint(lambda: host, MigrationTarget(f"fake://{host_id}"))

    restarted = Executor(store, endpoint, Observer(), poll_interval_s=0.01)
    restarted.start()
    record = wait_final(restarted, rec.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert "reconciled after restart: guest runs on target b" in record.message
