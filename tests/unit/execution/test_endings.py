"""How a migration's end is told: a post-copy that began and ended between two polls is still named on the timeline,
from the job's post-copy requests, and only once; a failure keeps the last poll's figures."""

from __future__ import annotations

from dataclasses import replace

from advisor.adapters.fake_hypervisor import FakeHypervisor
from advisor.domain.migration import MigrationResult, Phase, Progress
from advisor.domain.model import MigrationParameters, Move, Technique
from advisor.execution import endings, monitor
from advisor.execution.executor import HostEndpoint
from advisor.execution.hypervisor import MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.unit.execution.test_executor import COST, FakeClock, make, on_clock, wait_final, world_of

PRECOPY = monitor.MonitorState(phase=Phase.PRECOPY)
POLL = Progress(900.0, 112.0, 20.0, 1.0, 100.0, 2, transferred_mib=92.0, postcopy_requests=3)


def test_post_copy_requests_no_poll_saw_name_the_post_copy() -> None:
    done = MigrationResult(True, total_time_ms=980.0, transferred_mib=112.0, postcopy_requests=4)
    said = endings.unseen_postcopy(PRECOPY, done)
    assert said is not None and said.startswith("in post-copy: the guest runs on the target") and "4 post-copy" in said
    assert endings.unseen_postcopy(replace(PRECOPY, phase=Phase.POSTCOPY), done) is None  # a poll said it already
    assert endings.unseen_postcopy(PRECOPY, replace(done, postcopy_requests=0)) is None  # a pre-copy


def test_a_failure_keeps_the_last_polls_figures_and_a_success_its_own() -> None:
    failed = endings.with_last_poll(MigrationResult(False, error="x"), POLL)
    assert (failed.transferred_mib, failed.iterations, failed.postcopy_requests) == (92.0, 2, 3)
    assert endings.with_last_poll(MigrationResult(False, error="x"), None).transferred_mib is None
    measured = MigrationResult(False, transferred_mib=5.0)
    assert endings.with_last_poll(measured, POLL) is measured
    done = MigrationResult(True, transferred_mib=None)
    assert endings.with_last_poll(done, POLL) is done


def _postcopy(polls_see_it: bool) -> list[tuple[Phase, str]]:
    """A planned post-copy in the fake world, its polls seeing the switch or (as when QEMU sends the whole guest
    between two polls) never: the timeline it leaves."""
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.migration_s = 0.5

    class Blind(FakeHypervisor):
        def progress(self, guest: str) -> Progress | None:
            seen = super().progress(guest)
            return replace(seen, in_postcopy=False, postcopy_requests=0) if seen and not polls_see_it else seen

    def endpoint(host_id: str) -> HostEndpoint:
        return HostEndpoint(lambda: Blind(world, host_id), MigrationTarget(f"fake://{host_id}"))

    executor = make(clock, world)[0] if polls_see_it else on_clock(clock, world, MemoryMigrationStore(), endpoint,
                                                                  RecordingObserver())
    executor.start()
    params = MigrationParameters(Technique.POSTCOPY, 100, 300, postcopy_after_ms=0.0, deadline_ms=60_000)
    op = executor.submit("rec-pc", Move("vm1", "a", "b", params, COST, ()), actor="alice")
    world.release.set()
    record = wait_final(clock, executor, op.operation_id)
    assert record.phase is Phase.SUCCEEDED and record.outcome and record.outcome.postcopy_requests == 4
    return [(e.phase, e.message) for e in record.timeline]


def test_a_post_copy_shorter_than_a_poll_is_named_once_before_the_end() -> None:
    for polls_see_it in (False, True):
        timeline = _postcopy(polls_see_it)
        named = [i for i, (_, message) in enumerate(timeline) if message.startswith("in post-copy")]
        assert len(named) == 1, timeline
        assert timeline[named[0]][0] is Phase.POSTCOPY and timeline[-1][1].startswith("done in"), timeline
        assert ("between two polls" in timeline[named[0]][1]) is not polls_see_it, timeline
