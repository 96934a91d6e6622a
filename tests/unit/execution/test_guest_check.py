"""After a move the guest is checked on its new host: a table of looks and verdicts, and the migration's outcome
when the guest is silent (never succeeded), with the fake hypervisor on the executor tests' fake clock."""

from __future__ import annotations

import pytest

from advisor.adapters.fake_hypervisor import FakeHypervisor
from advisor.domain.migration import Phase
from advisor.execution.executor import HostEndpoint
from advisor.execution.guest_check import at_once, judge
from advisor.execution.hypervisor import Agent, GuestPulse, HypervisorError, MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.unit.execution.test_executor import (
    FakeClock,
    make,
    move,
    on_clock,
    reconciled_after_restart,
    wait_final,
    world_of,
)

RUNNING = GuestPulse(True, "running", 10.0)


@pytest.mark.parametrize(("first", "second", "answers", "words"), [
    (GuestPulse(False, "shut off, reason 5", None), None, False, "not running (shut off, reason 5)"),
    (GuestPulse(True, "running", 1.0, Agent.ANSWERED), None, True, "guest agent answered a ping"),
    (GuestPulse(True, "running", 1.0, Agent.SILENT, "timeout"), GuestPulse(True, "running", 3.0, Agent.ANSWERED),
     True, "guest agent answered"),
    (GuestPulse(True, "running", 1.0, Agent.SILENT), GuestPulse(True, "running", 3.0, Agent.SILENT), False,
     "did not answer a ping, twice 2 s apart"),
    (RUNNING, GuestPulse(True, "running", 10.4), True,
     "ran 400 ms in 2.0 s; no guest agent, so its OS itself was not asked"),
    (RUNNING, RUNNING, False, "its vCPUs did not run in 2.0 s"),
    (RUNNING, GuestPulse(False, "paused, reason 1", 10.0), False, "not running (paused, reason 1)"),
    (GuestPulse(True, "running", None), GuestPulse(True, "running", None), True, "only its state was checked"),
])
def test_a_guest_is_judged_on_one_look_where_it_settles_it_else_on_two(
        first: GuestPulse, second: GuestPulse | None, answers: bool, words: str) -> None:
    verdict = at_once(first) if second is None else judge(first, second, 2.0)
    assert verdict is not None and verdict.answers == answers and words in verdict.how
    assert (at_once(first) is None) == (second is not None)


def test_a_guest_whose_agent_answers_on_its_new_host_succeeds_at_once() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()
    executor, _, _ = make(clock, world)
    record = wait_final(clock, executor, executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.SUCCEEDED and record.outcome is not None and record.outcome.succeeded
    assert record.message.endswith("guest runs on target b (running, its guest agent answered a ping)")
    assert world.calls.count("pulse vm1") == 1


def test_a_silent_guest_fails_its_migration_at_once_never_succeeded() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.guests["vm1"].answers = False
    world.release.set()
    executor, _, observer = make(clock, world)
    record = wait_final(clock, executor, executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED and world.host_of("vm1") == "b"
    assert record.outcome is not None and not record.outcome.succeeded
    assert record.outcome.error.startswith("the guest does not answer on its new host: running, but its guest agent")
    assert record.outcome.total_time_ms > 0  # the hypervisor's figures are kept
    assert "failed: the guest does not answer on target b (running, but its guest agent did not answer" in \
        record.message
    assert [r.phase for r in observer.ended] == [Phase.FAILED]  # the observer (metrics, lifecycle) told at once
    assert world.calls.count("pulse vm1") == 2  # looked at twice, GUEST_CHECK_S apart
    assert record.timeline[-1].at_ms >= 2_000


class Frozen(FakeHypervisor):
    """No guest agent, and vCPUs that never run."""

    def guest_pulse(self, guest: str) -> GuestPulse:
        return GuestPulse(True, "running", 5.0)


class Unreachable(FakeHypervisor):
    def guest_pulse(self, guest: str) -> GuestPulse:
        raise HypervisorError("connection reset")


@pytest.mark.parametrize(("adapter", "words"), [
    (Frozen, "running, but its vCPUs did not run"),
    (Unreachable, "could not be checked: the hypervisor reported an error (incident"),
])
def test_a_guest_without_an_agent_or_that_cannot_be_looked_at_is_judged_as_it_shows(
        adapter: type[FakeHypervisor], words: str) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: adapter(world, host_id), MigrationTarget(f"fake://{host_id}"))

    executor = on_clock(clock, world, MemoryMigrationStore(), endpoint, RecordingObserver())
    executor.start()
    record = wait_final(clock, executor, executor.submit("rec-1", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED and words in record.message


def test_a_migration_reconciled_after_a_restart_is_checked_too() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "b"})
    world.guests["vm1"].answers = False
    record = reconciled_after_restart(clock, world)
    assert record.phase is Phase.FAILED and record.outcome is not None and not record.outcome.succeeded
    assert "guest runs on target b (running, but its guest agent did not answer" in record.message
