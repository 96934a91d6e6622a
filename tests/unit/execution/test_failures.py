"""Why a move failed, in classes an operator can act on: the pure classification, where the guest runs when a
host cannot be asked, and the executor's endings in the fake world (the lab's own are tests/lab)."""

from __future__ import annotations

from typing import Any

import pytest

from advisor.adapters.fake_hypervisor import FakeHypervisor, FakeMigration
from advisor.domain.failures import Failure, Fault, Side, failure_of
from advisor.domain.migration import GuestLocation, MigrationResult, Phase
from advisor.domain.model import MigrationParameters, Move, Technique
from advisor.execution.endings import located
from advisor.execution.executor import HostEndpoint
from advisor.execution.hypervisor import GuestFacts, HypervisorError, MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.unit.execution.test_executor import COST, FakeClock, make, move, on_clock, wait_final, world_of

S, T = Side.SOURCE, Side.TARGET
LOST = Fault.CONNECTION_LOST


@pytest.mark.parametrize(("fault", "called", "peer", "failure"), [
    (Fault.UNRESOLVABLE, S, False, Failure.SOURCE_UNRESOLVABLE),
    (Fault.UNRESOLVABLE, S, True, Failure.TARGET_UNRESOLVABLE),  # the source's daemon could not resolve the target
    (Fault.UNREACHABLE, S, False, Failure.SOURCE_UNREACHABLE),
    (Fault.UNREACHABLE, T, False, Failure.TARGET_UNREACHABLE),
    (Fault.AUTH_REFUSED, S, True, Failure.TARGET_AUTH_REFUSED),
    (Fault.AUTH_REFUSED, T, False, Failure.TARGET_AUTH_REFUSED),
    (LOST, S, False, Failure.SOURCE_DAEMON_GONE),  # our own connection to the source broke
    (LOST, S, True, Failure.TARGET_DAEMON_GONE),  # ours held: the source's to the target broke
    (LOST, T, False, Failure.TARGET_DAEMON_GONE),
    (Fault.REFUSED, S, False, Failure.QEMU_REFUSED),
    (Fault.REFUSED, S, True, Failure.QEMU_REFUSED),
    (Fault.CANCELLED, S, False, Failure.ABORTED_BY_PERSON),
    (Fault.NO_GUEST, T, False, Failure.GUEST_NOT_FOUND),
    (Fault.OTHER, S, True, Failure.HYPERVISOR_ERROR),
])
def test_a_fault_is_classed_by_the_host_it_concerns(fault: Fault, called: Side, peer: bool, failure: Failure) -> None:
    assert failure_of(fault, called, peer=peer) is failure


def test_every_failure_has_words_that_name_its_host_and_no_more() -> None:
    for failure in Failure:
        words = failure.words("hv1", "hv2")
        assert words and "{" not in words
        assert ("hv1" in words) == failure.value.startswith("source_")
        assert ("hv2" in words) == failure.value.startswith("target_")


SRC, TGT = GuestLocation.SOURCE, GuestLocation.TARGET


@pytest.mark.parametrize(("found", "unreachable", "where"), [
    ([SRC], [], SRC),
    ([TGT], [SRC], TGT),  # found on the target: known, whatever the source says
    ([SRC, TGT], [], GuestLocation.BOTH),
    ([], [], GuestLocation.NOWHERE),
    ([], [SRC], GuestLocation.SOURCE_UNREACHABLE),  # a dead source daemon's guest runs on in QEMU
    ([], [TGT], GuestLocation.TARGET_UNREACHABLE),
    ([], [SRC, TGT], GuestLocation.SOURCE_UNREACHABLE),
])
def test_where_the_guest_runs_is_unknown_when_a_host_cannot_be_asked(
        found: list[GuestLocation], unreachable: list[GuestLocation], where: GuestLocation) -> None:
    assert located(found, unreachable) is where


def test_an_abort_by_a_person_is_classed_so_and_nothing_unmeasured_reads_zero() -> None:
    clock = FakeClock()
    executor, _, _ = make(clock, world_of(clock, {"vm1": "a"}))
    op = executor.submit("rec", move("vm1", "a", "b"), actor="x").operation_id
    clock.sleep(0.1)
    executor.abort(op, "change freeze", actor="ops")
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.ABORTED and record.outcome is not None
    assert record.outcome.failure is Failure.ABORTED_BY_PERSON
    assert "aborted: aborted by a person (see the timeline); guest runs on source a" in record.message
    assert record.outcome.downtime_ms is None


def test_monitoring_lost_is_an_abort_by_the_monitor() -> None:
    clock = FakeClock()
    executor, _, _ = make(clock, world_of(clock, {"vm1": "a"}, fail_polls=True))
    record = wait_final(clock, executor, executor.submit("rec", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.outcome is not None and record.outcome.failure is Failure.ABORTED_BY_MONITOR


def test_a_pre_copy_at_its_deadline_is_aborted_for_it() -> None:
    clock = FakeClock()
    executor, _, _ = make(clock, world_of(clock, {"vm1": "a"}))  # never released: it runs on
    params = MigrationParameters(Technique.PRECOPY, 100, 300, postcopy_after_ms=None, deadline_ms=1_000)
    op = executor.submit("rec", Move("vm1", "a", "b", params, COST, ()), actor="x").operation_id
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.ABORTED and record.outcome is not None
    assert record.outcome.failure is Failure.DEADLINE and "aborted at its deadline" in record.message


def test_an_unreachable_source_fails_the_start_with_its_class_and_no_figures() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.kill("a")
    executor, _, _ = make(clock, world)
    record = wait_final(clock, executor, executor.submit("rec", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED and record.outcome is not None
    assert record.outcome.failure is Failure.SOURCE_UNREACHABLE
    assert record.message.startswith("cannot start: source a cannot be reached (incident ")
    assert "Connection refused" not in record.message  # the hypervisor's words stay in the log
    o = record.outcome
    assert (o.total_time_ms, o.downtime_ms, o.transferred_mib) == (None, None, None)


def test_a_source_daemon_killed_mid_migration_says_so_and_where_the_guest_runs_is_not_known() -> None:
    """The source's daemon dies: the migrate call's connection breaks, and the source can no longer be asked
    whether its QEMU runs the guest on (it does): never "runs on no host"."""
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    dead: set[str] = set()

    class Dying(FakeHypervisor):
        def guests(self) -> list[GuestFacts]:
            if self.host in dead:
                raise HypervisorError("guests of fake://a: client socket is closed", Fault.CONNECTION_LOST)
            return super().guests()

    def launch(*_: Any) -> FakeMigration:
        dead.add("a")
        return FakeMigration(world, "vm1", MigrationResult(
            False, error="End of file while reading data: Input/output error", total_time_ms=1500.0,
            fault=Fault.CONNECTION_LOST))

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Dying(world, host_id), MigrationTarget(f"fake://{host_id}"))

    world.launch = launch  # type: ignore[method-assign]
    executor = on_clock(clock, world, MemoryMigrationStore(), endpoint, RecordingObserver())
    executor.start()
    record = wait_final(clock, executor, executor.submit("rec", move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED and record.outcome is not None
    assert record.outcome.failure is Failure.SOURCE_DAEMON_GONE
    assert "failed: source a's hypervisor daemon went away (incident " in record.message
    assert record.message.endswith("guest runs on an unknown host (source a unreachable)")
    assert "no host" not in record.message and "End of file" not in record.message
    assert record.outcome.total_time_ms == 1500.0 and record.outcome.downtime_ms is None
