"""The production background: a migrate call in a thread of its own, and a script driven in a thread. No sleeping:
the fake migrate call blocks until the test lets it go, and the script's pauses are recorded, not slept."""

from __future__ import annotations

import threading

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.model import MigrationParameters, Technique
from advisor.execution.background import Pause, Steps, ThreadedMigration, Threads
from advisor.execution.hypervisor import MigrationTarget

PARAMS = MigrationParameters(Technique.PRECOPY, 100, 300, postcopy_after_ms=None, deadline_ms=60_000)


def test_a_threaded_migration_runs_until_the_blocking_call_returns() -> None:
    world = FakeWorld(("a", "b"), gated=True)
    world.add_guest("vm1", "a")
    job = ThreadedMigration(world.connect("fake://a"), "vm1", MigrationTarget("fake://b"), PARAMS)
    assert job.running()
    world.release.set()
    result = job.result()  # joins the thread
    assert not job.running() and result.succeeded and world.host_of("vm1") == "b"


def test_threads_drive_a_script_pausing_with_the_sleep_they_are_given() -> None:
    slept: list[float] = []
    ended = threading.Event()

    def script() -> Steps[None]:
        yield Pause(0.5)
        yield Pause(2.0)
        ended.set()

    background = Threads(sleep=slept.append)
    background.spawn(script(), "test-script")
    background.join(10.0)
    assert ended.is_set() and slept == [0.5, 2.0]
