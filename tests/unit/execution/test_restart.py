"""Restarts in the executor, with the fake hypervisor on a fake clock: a guest whose host died is defined and
started on its target from its last known definition, in a phase of its own with no statistics; without a
definition, or on a target that refuses it, the restart fails and says why."""

from __future__ import annotations

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.evacuation import RESTART_PARAMETERS
from advisor.domain.migration import Phase
from advisor.domain.model import Move
from advisor.execution.executor import Executor, HostEndpoint
from advisor.execution.hypervisor import GuestDefinition, MigrationTarget
from advisor.execution.restart import DOWNTIME_UNKNOWN
from advisor.physics.cold import restart_cost
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.unit.execution.test_executor import FakeClock, wait_final


def setup(definitions: dict[str, GuestDefinition]) -> tuple[FakeClock, FakeWorld, Executor, RecordingObserver]:
    clock = FakeClock()
    world = FakeWorld(("a", "b", "c"), clock=clock, sleep=clock.sleep)
    for name in ("vm1", "vm2", "vm3"):
        world.add_guest(name, "a")

    def endpoint(host_id: str) -> HostEndpoint:
        uri = f"fake://{host_id}"
        return HostEndpoint(lambda: world.connect(uri), MigrationTarget(uri))

    observer = RecordingObserver()
    executor = Executor(MemoryMigrationStore(), endpoint, observer, clock=clock, monotonic=clock, background=clock,
                        launch=world.launch, poll_interval_s=0.01,
                        definitions=definitions.get)
    executor.start()
    return clock, world, executor, observer


def restart(vm: str, target: str) -> Move:
    return Move(vm, "a", target, RESTART_PARAMETERS, restart_cost(), ())


def test_a_guest_of_a_dead_host_is_restarted_on_its_target() -> None:
    known = {f"vm{i}": GuestDefinition(f"<domain><name>vm{i}</name></domain>", True) for i in (1, 2)}
    clock, world, executor, observer = setup(known)
    definition_read = world.connect("fake://a").definition("vm1")
    assert "<name>vm1</name>" in definition_read.xml and definition_read.persistent
    world.kill("a")
    first = executor.submit("rec", restart("vm1", "b"), actor="alice").operation_id
    second = executor.submit("rec", restart("vm2", "c"), actor="alice", move_index=1).operation_id
    record = wait_final(clock, executor, first)
    assert record.phase is Phase.SUCCEEDED, record.timeline
    assert [e.phase for e in record.timeline][:2] == [Phase.QUEUED, Phase.RESTARTING]
    assert DOWNTIME_UNKNOWN in record.message and "guest runs on target b" in record.message
    assert record.outcome is not None and record.outcome.downtime_ms is None and record.outcome.transferred_mib == 0
    assert world.host_of("vm1") == "b" and wait_final(clock, executor, second).phase is Phase.SUCCEEDED
    assert observer.seen == [] and "restart vm1" in world.calls  # nothing polled: no job statistics


def test_a_restart_without_a_definition_or_onto_a_refusing_target_fails_and_says_why() -> None:
    clock, world, executor, _ = setup({"vm1": GuestDefinition("<domain><name>vm1</name></domain>", True)})
    world.kill("a")
    missing = wait_final(clock, executor, executor.submit("rec", restart("vm3", "b"), actor="x").operation_id)
    assert missing.phase is Phase.FAILED and "has no definition of it" in missing.message
    world.kill("c")
    refused = wait_final(clock, executor, executor.submit("rec2", restart("vm1", "c"), actor="x").operation_id)
    assert refused.phase is Phase.FAILED and "could not restart it on c" in refused.message
    assert world.host_of("vm1") == "a"


def test_a_guest_whose_host_still_runs_is_never_started_twice() -> None:
    clock, world, executor, _ = setup({"vm1": GuestDefinition("<domain><name>vm1</name></domain>", True)})
    record = wait_final(clock, executor, executor.submit("rec", restart("vm1", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED and world.host_of("vm1") == "a"
