"""A cold move through the executor and the fake hypervisor, on the fake clock of test_executor: its own phase (no
job statistics polled, nothing steered), its outcome (downtime is the whole outage), a failure that says where
the guest was left, and an abort refused while it runs."""

from __future__ import annotations

import pytest

from advisor.domain.errors import FailedPrecondition
from advisor.domain.migration import Phase
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from tests.unit.execution.test_executor import FakeClock, make, wait_final, world_of

COLD_COST = MigrationCost(Technique.COLD, Interval(1, 2, 3), Interval(1, 2, 3), Interval.exact(0.004), True,
                          ModelRef("cold-steps", "1.0.0"))


def cold_move(vm: str, src: str, dst: str) -> Move:
    params = MigrationParameters(Technique.COLD, 100, 300, shutdown_timeout_ms=30_000)
    return Move(vm, src, dst, params, COLD_COST, ())


@pytest.mark.parametrize(("ignore_shutdown", "detail"), [
    (False, "shut down by itself"),
    (True, "forced off: it did not shut down within its timeout"),
])
def test_a_cold_move_runs_in_its_own_phase_and_records_the_outage(ignore_shutdown: bool, detail: str) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.ignore_shutdown = ignore_shutdown
    world.migration_s = 2.0
    executor, _, observer = make(clock, world)
    op = executor.submit("rec-1", cold_move("vm1", "a", "b"), actor="alice").operation_id
    clock.sleep(0.5)
    assert executor.get(op).phase is Phase.COLD
    assert "shutting it down (forced off after 30 s)" in executor.get(op).message
    world.release.set()
    record = wait_final(clock, executor, op)
    assert record.phase is Phase.SUCCEEDED
    assert world.host_of("vm1") == "b"
    # no downtime ramp, no speed, no post-copy: nothing to steer; then the guest is looked at on its new host
    assert world.calls == ["cold move vm1", "pulse vm1"]
    assert observer.seen == []  # no pre-copy statistics
    outcome = record.outcome
    assert outcome is not None and outcome.downtime_ms == outcome.total_time_ms >= 2000
    assert outcome.transferred_mib == pytest.approx(0.004)
    assert "guest runs on target b" in record.message and detail in record.message
    assert [e.phase for e in record.timeline] == [Phase.QUEUED, Phase.COLD, Phase.SUCCEEDED]


def test_a_failed_cold_move_says_where_it_left_the_guest() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.fail_cold_start = True
    world.release.set()
    executor, _, _ = make(clock, world)
    record = wait_final(clock, executor, executor.submit("rec-1", cold_move("vm1", "a", "b"), actor="x").operation_id)
    assert record.phase is Phase.FAILED
    assert world.host_of("vm1") == "a"
    assert "guest runs on source a" in record.message and "(started again on the source)" in record.message
    assert "internal error: fake" not in record.message  # the hypervisor's words stay in the log


def test_a_cold_move_cannot_be_aborted_once_it_runs() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    executor, _, _ = make(clock, world)
    op = executor.submit("rec-1", cold_move("vm1", "a", "b"), actor="x").operation_id
    clock.sleep(0.1)
    with pytest.raises(FailedPrecondition, match="cold move under way"):
        executor.abort(op, "changed my mind")
    world.release.set()
    assert wait_final(clock, executor, op).phase is Phase.SUCCEEDED
