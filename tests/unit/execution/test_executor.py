"""The executor's own logic (queue, limits, idempotency, abort, failure handling) with the fake hypervisor
(advisor.adapters.fake_hypervisor), on a fake clock: the migrations' scripts run one step at a time in this thread,
so every case is decided the same way on every run, without threads or sleeping. Real migrations are tested
against the lab in tests/lab/."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from advisor.adapters.fake_hypervisor import FakeHypervisor, FakeWorld
from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.failures import Failure
from advisor.domain.migration import MigrationRecord, Phase, Progress, TimelineEntry
from advisor.domain.model import (
    MigrationInputs,
    MigrationParameters,
    Move,
    Technique,
)
from advisor.execution.background import Steps
from advisor.execution.executor import ConcurrencyLimits, Executor, HostEndpoint, Predict, share_of_links
from advisor.execution.hypervisor import GuestFacts, MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.support.values import COST

HOSTS = ("a", "b", "t", *(f"t{i}" for i in range(5)), *(f"s{i}" for i in range(4)))


class FakeClock:
    """Time that passes only when someone waits, and the executor's background: each script's next step is due
    when its pause ends, and the steps run in the order they are due (ties in the order they were scheduled)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self._due: list[tuple[float, int, Steps[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def spawn(self, steps: Steps[None], name: str) -> None:
        heapq.heappush(self._due, (self.now, next(self._order), steps))

    def step(self) -> bool:
        """Run the next step due, moving time on to it; False when no script is left."""
        if not self._due:
            return False
        due, _, steps = heapq.heappop(self._due)
        self.now = max(self.now, due)
        pause = next(steps, None)
        if pause is not None:
            heapq.heappush(self._due, (self.now + pause.seconds, next(self._order), steps))
        return True

    def sleep(self, seconds: float) -> None:
        end = self.now + seconds
        while self._due and self._due[0][0] <= end:
            self.step()
        self.now = end

    def wait(self, news: threading.Condition, seconds: float) -> None:
        """A watcher waits: the next step due within `seconds` runs, or the time passes."""
        if self._due and self._due[0][0] <= self.now + seconds:
            self.step()
        else:
            self.now += seconds

    def join(self, seconds: float) -> None:
        self.run_until(lambda: not self._due)

    def run_until(self, done: Callable[[], bool], most_steps: int = 100_000) -> None:
        for _ in range(most_steps):
            if done() or not self.step():
                break
        assert done(), "the scripts stopped, or ran on, before it came true"


def world_of(clock: FakeClock, location: dict[str, str], *, fail_polls: bool = False) -> FakeWorld:
    """Guests where `location` says; migrations wait for `world.release` (a gated world)."""
    world = FakeWorld(HOSTS, gated=True, clock=clock, sleep=clock.sleep)
    for guest, host in location.items():
        world.add_guest(guest, host)
    world.fail_polls = fail_polls
    return world


VM1_FACTS = GuestFacts("vm1", "uuid-vm1", 128, 1, True)


def move(vm: str, src: str, dst: str) -> Move:
    params = MigrationParameters(Technique.PRECOPY, 100, 300, postcopy_after_ms=None, deadline_ms=60_000)
    return Move(vm, src, dst, params, COST, ())


def make(
    clock: FakeClock, world: FakeWorld, limits: ConcurrencyLimits | None = None, *,
    links: dict[str, float] | None = None, predict: Predict | None = None,
) -> tuple[Executor, MemoryMigrationStore, RecordingObserver]:
    def endpoint(host_id: str) -> HostEndpoint:
        if host_id == "ghost":
            raise NotFound("host_id", "host", host_id)
        uri = f"fake://{host_id}"
        return HostEndpoint(lambda: world.connect(uri), MigrationTarget(uri), (links or {}).get(host_id))

    store, observer = MemoryMigrationStore(), RecordingObserver()
    executor = on_clock(clock, world, store, endpoint, observer, limits, predict)
    executor.start()
    return executor, store, observer


def on_clock(clock: FakeClock, world: FakeWorld, store: MemoryMigrationStore,
             endpoint: Callable[[str], HostEndpoint], observer: RecordingObserver,
             limits: ConcurrencyLimits | None = None, predict: Predict | None = None) -> Executor:
    """An executor whose every wait and time stamp is the fake clock's, migrating in the fake world."""
    return Executor(store, endpoint, observer, clock=clock, monotonic=clock, background=clock, launch=world.launch,
                    limits=limits or ConcurrencyLimits(), poll_interval_s=0.01, predict=predict)


def wait_final(clock: FakeClock, executor: Executor, op: str) -> MigrationRecord:
    clock.run_until(lambda: executor.get(op).phase.final)
    return executor.get(op)


def test_a_migration_runs_to_success_and_the_same_recommendation_never_runs_twice() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    executor, _, observer = make(clock, world)
    first = executor.submit("rec-1", move("vm1", "a", "b"), actor="alice")
    second = executor.submit("rec-1", move("vm1", "a", "b"), actor="bob")
    assert second.operation_id == first.operation_id
    world.release.set()
    record = wait_final(clock, executor, first.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert record.outcome is not None and record.outcome.downtime_ms == 20
    assert "guest runs on target b" in record.message
    assert world.calls.count("migrate vm1") == 1
    assert [r.operation_id for r in observer.ended] == [first.operation_id]
    assert executor.submit("rec-1", move("vm1", "a", "b"), actor="carol").operation_id == first.operation_id


def test_a_vm_is_moved_by_one_operation_at_a_time() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    executor, store, _ = make(clock, world, ConcurrencyLimits(per_cluster=1))
    first = executor.submit("rec-1", move("vm1", "a", "b"), actor="alice").operation_id
    for rec_id, target in (("rec-2", "t"), ("rec-1", "t")):  # another recommendation, or another attempt
        with pytest.raises(FailedPrecondition, match=f"VM vm1 is being moved by operation {first} "):
            executor.submit(rec_id, move("vm1", "a", target), actor="bob", attempt=1 + (rec_id == "rec-1"))
    assert executor.submit("rec-1", move("vm1", "a", "b"), actor="carol").operation_id == first  # the same one
    assert list(store.records) == [first]  # nothing else stored queued
    world.release.set()
    wait_final(clock, executor, first)
    assert executor.submit("rec-2", move("vm1", "b", "t"), actor="bob").operation_id != first


def test_a_vm_whose_migration_ended_is_free_to_move_again_as_its_end_is_acted_on() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()
    store, next_moves = MemoryMigrationStore(), []

    class MovingOn(RecordingObserver):  # a run going on from the end with another move of the same VM
        def finished(self, record: MigrationRecord) -> None:
            super().finished(record)
            next_moves.append((executor.migrating_vms(), executor.submit("rec-2", move("vm1", "b", "t"),
                                                                         actor="x").operation_id))

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: world.connect(f"fake://{host_id}"), MigrationTarget(f"fake://{host_id}"))

    executor = on_clock(clock, world, store, endpoint, MovingOn())
    first = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    clock.run_until(lambda: bool(next_moves))
    (migrating, second), = next_moves
    assert migrating == frozenset() and wait_final(clock, executor, second).phase is Phase.SUCCEEDED
    assert executor.get(first).phase is Phase.SUCCEEDED and world.host_of("vm1") == "t"


def test_the_timeline_is_stamped_by_the_clock_it_is_given() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.migration_s = 0.5
    world.release.set()
    executor, _, _ = make(clock, world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="alice").operation_id
    clock.sleep(2.0)
    record = executor.get(op)
    assert record.phase is Phase.SUCCEEDED and record.created_at_s == 1_000.0
    assert record.finished_at_s is not None and 1_000.5 <= record.finished_at_s < 1_000.6
    assert record.outcome is not None and 500 <= record.outcome.total_time_ms < 600
    assert record.timeline[0].at_ms == 0.0 and 500 <= record.timeline[-1].at_ms < 600


def test_limits_queue_the_excess_and_release_it_in_order() -> None:
    clock = FakeClock()
    world = world_of(clock, {f"vm{i}": "a" for i in range(5)})
    executor, _, observer = make(clock, world, ConcurrencyLimits(per_cluster=5, per_source=2, per_target=5))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", "a", f"t{i}"), actor="x").operation_id for i in range(5)]
    clock.sleep(0.2)
    assert world.running == 2
    assert [executor.get(op).phase for op in ops] == [Phase.PRECOPY] * 2 + [Phase.QUEUED] * 3
    world.release.set()
    assert all(wait_final(clock, executor, op).phase is Phase.SUCCEEDED for op in ops)
    assert world.most_running == 2
    assert [r.operation_id for r in observer.ended] == ops


def test_inbound_limit_per_target() -> None:
    clock = FakeClock()
    world = world_of(clock, {f"vm{i}": f"s{i}" for i in range(4)})
    executor, _, _ = make(clock, world, ConcurrencyLimits(per_cluster=5, per_source=5, per_target=1))
    ops = [executor.submit(f"rec-{i}", move(f"vm{i}", f"s{i}", "t"), actor="x").operation_id for i in range(4)]
    clock.sleep(0.2)
    assert world.running == 1
    world.release.set()
    for op in ops:
        assert wait_final(clock, executor, op).phase is Phase.SUCCEEDED
    assert world.most_running == 1


def test_abort_of_a_running_and_of_a_queued_migration() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a", "vm2": "a"})
    executor, _, _ = make(clock, world, ConcurrencyLimits(per_cluster=1))
    running = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    queued = executor.submit("rec-2", move("vm2", "a", "b"), actor="x").operation_id
    clock.sleep(0.1)
    assert executor.abort(queued, "changed plan").phase is Phase.ABORTED
    executor.abort(running, "operator said so", actor="ops")
    assert executor.abort(running, "me too", actor="bob").phase is Phase.PRECOPY  # asked again: still on its way
    asked_at = clock.now
    record = wait_final(clock, executor, running)
    assert record.phase is Phase.ABORTED
    aborting = [e.message for e in record.timeline if "aborting" in e.message]
    assert aborting == ["aborting on request: operator said so (by ops)"]
    assert record.finished_at_s is not None and record.finished_at_s - asked_at < 0.1  # at the next poll
    assert "guest runs on source a" in record.message
    assert "abort vm1" in world.calls and "migrate vm2" not in world.calls
    with pytest.raises(FailedPrecondition, match="already ended"):
        executor.abort(running, "again")


@pytest.mark.parametrize("technique", [Technique.PRECOPY, Technique.COLD])
def test_an_abort_granted_once_scheduled_but_before_its_script_ran_keeps_it_from_starting(
        technique: Technique) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()
    executor, _, _ = make(clock, world)
    params = MigrationParameters(technique, 100, 300, postcopy_after_ms=None, deadline_ms=60_000)
    op = executor.submit("rec-1", Move("vm1", "a", "b", params, COST, ()), actor="x").operation_id
    assert executor.abort(op, "changed plan", actor="ops").phase is Phase.QUEUED  # its script is due, not run
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.ABORTED and "aborted before it started: changed plan (by ops)" in record.message
    assert world.calls == [] and world.host_of("vm1") == "a"  # a cold move did not shut the guest down
    assert record.outcome is not None and record.outcome.downtime_ms is None


def test_monitoring_failure_aborts_the_job() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"}, fail_polls=True)
    executor, _, _ = make(clock, world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.ABORTED
    assert any("monitoring failed" in e.message for e in record.timeline)


def test_an_unknown_host_fails_the_operation_with_the_reason() -> None:
    clock = FakeClock()
    executor, _, _ = make(clock, world_of(clock, {}))
    op = executor.submit("rec-1", move("vm1", "ghost", "b"), actor="x").operation_id
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.FAILED and "unknown host 'ghost'" in record.message


def lingering(guests: list[GuestFacts], host: str) -> list[GuestFacts]:
    """The source keeps listing the guest after it left."""
    return guests if host != "a" or any(g.name == "vm1" for g in guests) else [*guests, VM1_FACTS]


def vanished(guests: list[GuestFacts], host: str) -> list[GuestFacts]:
    """The target does not list the guest that arrived."""
    return [g for g in guests if g.name != "vm1"]


@pytest.mark.parametrize(("listed", "where"), [
    (lingering, "BOTH source a and target b"),
    (vanished, "no host (not found running)"),
])
def test_a_migration_that_leaves_the_guest_not_on_its_target_alone_fails_after_time_to_settle(
    listed: Callable[[list[GuestFacts], str], list[GuestFacts]], where: str
) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()

    class Listing(FakeHypervisor):
        def guests(self) -> list[GuestFacts]:
            return listed(super().guests(), self.host)

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Listing(world, host_id), MigrationTarget(f"fake://{host_id}"))

    executor = on_clock(clock, world, MemoryMigrationStore(), endpoint, RecordingObserver())
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.FAILED
    assert f"guest runs on {where}" in record.message
    assert record.timeline[-1].at_ms >= 5_000  # asked again for 5 s of the clock before it judged


def test_watch_streams_until_the_end() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    executor, _, _ = make(clock, world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    phases = []
    for view in executor.watch(op, timeout_s=10):
        phases.append(view.record.phase)
        if view.record.phase is Phase.PRECOPY:
            world.release.set()  # the migration may end once the watcher saw it under way
    assert phases[0] is Phase.QUEUED and Phase.PRECOPY in phases and phases[-1] is Phase.SUCCEEDED
    (final,) = [w.record.phase for w in executor.watch(op)]
    assert final is Phase.SUCCEEDED


def test_watch_gives_up_at_its_timeout() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})  # never released
    executor, _, _ = make(clock, world)
    op = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    views = list(executor.watch(op, timeout_s=3))
    assert views[-1].record.phase is Phase.PRECOPY and 1_003.0 <= clock.now < 1_003.1


def reconciled_after_restart(clock: FakeClock, world: FakeWorld, *said: str) -> MigrationRecord:
    """A move of vm1 from a to b whose advisor died mid pre-copy (the record says pre-copy, with `said` last on its
    timeline; no job runs any more), as a restarted advisor settles it with the hypervisors."""
    executor, store, _ = make(clock, world)
    rec = executor.submit("rec-1", move("vm1", "a", "b"), actor="x")
    executor.stop()
    timeline = (*rec.timeline, *(TimelineEntry(1.0, Phase.PRECOPY, message) for message in said))
    store.records[rec.operation_id] = replace(rec, phase=Phase.PRECOPY, timeline=timeline)

    class Quiet(FakeHypervisor):
        def progress(self, guest: str) -> Progress | None:
            return None

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Quiet(world, host_id), MigrationTarget(f"fake://{host_id}"))

    restarted = on_clock(clock, world, store, endpoint, RecordingObserver())
    restarted.start()
    return wait_final(clock, restarted, rec.operation_id)


def test_restart_reconciles_an_unfinished_record_with_where_the_guest_runs() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "b"})  # the guest arrived while the advisor was down
    record = reconciled_after_restart(clock, world)
    assert record.phase is Phase.SUCCEEDED
    assert "reconciled after restart: guest runs on target b" in record.message


@pytest.mark.parametrize(("said", "phase", "failure"), [
    ((), Phase.FAILED, Failure.NOT_COMPLETED),
    (("aborting on request: change freeze (by ops)",), Phase.ABORTED, Failure.ABORTED_BY_PERSON),
    (("aborting: will not converge",), Phase.ABORTED, Failure.ABORTED_BY_MONITOR),
], ids=["no abort", "a person's", "the monitor's"])
def test_a_restart_finding_the_guest_on_its_source_after_an_abort_was_sent_records_the_abort(
        said: tuple[str, ...], phase: Phase, failure: Failure) -> None:
    clock = FakeClock()
    record = reconciled_after_restart(clock, world_of(clock, {"vm1": "a"}), *said)
    assert record.phase is phase and record.outcome is not None and record.outcome.failure is failure
    assert record.outcome.downtime_ms is None and "guest runs on source a" in record.message


def test_an_executor_started_again_after_a_stop_runs_its_operations_to_their_end() -> None:
    """The lead lost, then won back: the operations under way are reconciled, those queued start once each, and new
    ones run (a stop left every script leaving its operation at once, stuck as it was)."""
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a", "vm2": "a", "vm3": "a"})
    quiet = []  # the first migration's job is gone when the lead is won back

    class Quiet(FakeHypervisor):
        def progress(self, guest: str) -> Progress | None:
            return None if quiet else super().progress(guest)

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Quiet(world, host_id), MigrationTarget(f"fake://{host_id}"))

    observer = RecordingObserver()
    executor = on_clock(clock, world, MemoryMigrationStore(), endpoint, observer, ConcurrencyLimits(per_cluster=1))
    executor.start()
    running = executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id
    queued = executor.submit("rec-2", move("vm2", "a", "b"), actor="x").operation_id
    clock.sleep(0.1)
    executor.stop()
    quiet.append(True)
    executor.start("took over again")
    world.release.set()
    assert wait_final(clock, executor, running).phase is Phase.FAILED  # reconciled: the guest stayed on a
    assert wait_final(clock, executor, queued).phase is Phase.SUCCEEDED
    later = executor.submit("rec-3", move("vm3", "a", "b"), actor="x").operation_id
    assert wait_final(clock, executor, later).phase is Phase.SUCCEEDED
    assert world.calls.count("migrate vm2") == 1 and [r.operation_id for r in observer.ended] == [
        running, queued, later]
    assert executor.migrating_vms() == frozenset()


def test_a_refused_switch_to_postcopy_is_asked_again_not_dropped() -> None:
    """QEMU refuses migrate-start-postcopy until the job is under way: the planned post-copy is asked again at
    the next poll rather than left to run as a pre-copy."""
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.migration_s = 0.5
    world.refuse_postcopy = 2
    executor, _, _ = make(clock, world)
    params = MigrationParameters(Technique.POSTCOPY, 100, 300, postcopy_after_ms=0.0, deadline_ms=60_000)
    op = executor.submit("rec-pc", Move("vm1", "a", "b", params, COST, ()), actor="alice")
    world.release.set()
    record = wait_final(clock, executor, op.operation_id)
    assert record.phase is Phase.SUCCEEDED
    assert world.calls.count("postcopy") == 1 and world.refuse_postcopy == 0
    notes = [e.message for e in record.timeline]
    # The refusals asked again are no errors; each event is said once.
    assert not any("action failed" in n for n in notes), notes
    assert sum("switching to post-copy" in n for n in notes) == 1 and sum("in post-copy" in n for n in notes) == 1
    assert [e.phase for e in record.timeline if "in post-copy" in e.message] == [Phase.POSTCOPY]


@pytest.mark.parametrize(("source", "target", "running", "links", "share"), [
    ("a", "t0", [], {}, 100.0),  # alone, links unknown: its cap
    ("a", "t0", [("b", "t1")], {}, 100.0),  # a move on other hosts takes nothing
    ("a", "t0", [("a", "t1")], {}, 50.0),  # one more out of its source
    ("a", "t0", [("b", "t0")], {}, 50.0),  # one more into its target
    ("a", "t0", [("a", "t1"), ("b", "t0")], {}, 50.0),  # one on each side: each link is halved, not quartered
    ("a", "t0", [("a", "t1"), ("a", "t2")], {}, 100 / 3),  # the busier link bounds it
    ("a", "t0", [("a", "t1")], {"a": 250.0, "t0": 100.0}, 100.0),  # a fast source halved is above its cap
    ("a", "t0", [("a", "t1"), ("a", "t2")], {"a": 150.0, "t0": 100.0}, 50.0),  # ... thirded, below it
    ("a", "t0", [("b", "t0")], {"a": 100.0, "t0": 60.0}, 30.0),  # each link its own share: the target's half
], ids=["alone", "elsewhere", "same source", "same target", "both", "three out", "fast source",
        "fast source thirded", "slow target"])
def test_share_of_links_of_a_migration_starting_beside_the_running_ones(
        source: str, target: str, running: list[tuple[str, str]], links: dict[str, float], share: float) -> None:
    assert share_of_links(100.0, source, target, running, links.get) == pytest.approx(share)


def test_a_migration_starting_beside_another_on_its_source_is_given_half_the_link() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm0": "a", "vm1": "a"})
    executor, _, _ = make(clock, world)
    first = executor.submit("rec-0", move("vm0", "a", "t0"), actor="x")
    inputs = MigrationInputs(128, 8, 125, 100)
    second = executor.submit("rec-1", replace(move("vm1", "a", "t1"), inputs=inputs), actor="x")
    clock.sleep(0.2)
    assert executor.get(first.operation_id).parameters.bandwidth_mib_s == 100
    assert executor.get(second.operation_id).parameters.bandwidth_mib_s == 50
    # what the outcome is learned from says the cap it ran at, not the whole link
    shared = executor.get(second.operation_id).inputs
    assert shared is not None and (shared.max_bandwidth_mib_s, shared.bandwidth_mib_s) == (50, 50)
    world.release.set()
    assert wait_final(clock, executor, second.operation_id).parameters.bandwidth_mib_s == 50


def test_a_plan_move_priced_at_a_share_it_does_not_get_records_the_whole_link_it_ran_at() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm0": "a"})
    executor, _, _ = make(clock, world)
    # a plan expected it to start beside another move out of a, at half of the link: it starts alone
    priced = MigrationInputs(128, 8, 100, 50)
    op = executor.submit("rec-0", replace(move("vm0", "a", "t0"), inputs=priced), actor="x").operation_id
    clock.sleep(0.2)
    ran = executor.get(op)
    assert ran.parameters.bandwidth_mib_s == 100
    assert ran.inputs is not None and (ran.inputs.max_bandwidth_mib_s, ran.inputs.bandwidth_mib_s) == (100, 100)
    world.release.set()
    wait_final(clock, executor, op)
