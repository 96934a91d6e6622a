"""Where a migration's steps run and how they wait.

The runner writes each operation as a script of steps (a generator) that yields a `Pause` wherever it waits: between
polls, while a guest settles on one host. The script never reads the time of day nor sleeps itself. In production
each script runs in a thread of its own (`Threads`) and a pause is a real sleep, or the migrate call's join, so the
end of a migration is noticed at once; tests drive the same scripts on a fake clock, one step at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from advisor.domain.migration import MigrationResult
from advisor.domain.model import MigrationParameters, Technique
from advisor.execution.hypervisor import Hypervisor, MigrationTarget

T = TypeVar("T")


class MigrationJob(Protocol):
    """A migrate call under way."""

    def running(self) -> bool: ...

    def wait(self, seconds: float) -> None:
        """Wait at most `seconds`, less if the job ends."""
        ...

    def result(self) -> MigrationResult:
        """How it ended; asked once it no longer runs."""
        ...


@dataclass(frozen=True)
class Pause:
    """The script waits `seconds` before its next step, or less once `job` ends."""

    seconds: float
    job: MigrationJob | None = None


# A script of steps that returns a T at its end (None for a whole operation).
Steps = Generator[Pause, None, T]

# Starts migrating `guest` from `source`: the Hypervisor's blocking `migrate` (or `cold_move`) in a thread of its own,
# in production.
Launch = Callable[[Hypervisor, str, MigrationTarget, MigrationParameters], MigrationJob]


class ThreadedMigration:
    """The blocking `migrate` call (`cold_move` for a cold migration) in a thread of its own, steered meanwhile from
    the script's thread."""

    def __init__(self, source: Hypervisor, guest: str, target: MigrationTarget, parameters: MigrationParameters):
        self._outcome: list[MigrationResult] = []
        move = source.cold_move if parameters.technique is Technique.COLD else source.migrate
        self._thread = threading.Thread(
            target=lambda: self._outcome.append(move(guest, target, parameters)),
            name=f"migrate-{guest}", daemon=True,
        )
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, seconds: float) -> None:
        self._thread.join(seconds)

    def result(self) -> MigrationResult:
        self._thread.join()
        return self._outcome[0] if self._outcome else MigrationResult(False, error="migrate call died")


class Background(Protocol):
    """Runs the operations' scripts, and lets a watcher wait for news from them."""

    def spawn(self, steps: Steps[None], name: str) -> None: ...

    def wait(self, news: threading.Condition, seconds: float) -> None:
        """With `news` held: wait at most `seconds` for a notification."""
        ...

    def join(self, seconds: float) -> None:
        """Wait (at most `seconds` for each) for the scripts to end."""
        ...


class Threads:
    """Each script in a daemon thread of its own; a pause sleeps, or waits on its job."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._threads: list[threading.Thread] = []

    def spawn(self, steps: Steps[None], name: str) -> None:
        thread = threading.Thread(target=self._drive, args=(steps,), name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]  # a server runs for months: keep the live ones
        self._threads.append(thread)
        thread.start()

    def _drive(self, steps: Steps[None]) -> None:
        for pause in steps:
            if pause.job is None:
                self._sleep(pause.seconds)
            else:
                pause.job.wait(pause.seconds)

    def wait(self, news: threading.Condition, seconds: float) -> None:
        news.wait(timeout=seconds)

    def join(self, seconds: float) -> None:
        for thread in self._threads:
            thread.join(seconds)
