"""Test doubles of the executor and its ports: a migration store in memory, an observer that records, and an
executor whose migrations end when the test says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.ids import new_id
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, Progress
from advisor.domain.model import Move
from advisor.execution.executor import ExecutionObserver, MigrationStore, Watched
from advisor.execution.monitor import Estimate


class MemoryMigrationStore:
    """The executor's MigrationStore in a dict: one operation per (recommendation, move)."""

    def __init__(self) -> None:
        self.records: dict[str, MigrationRecord] = {}

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        for r in self.records.values():
            if (r.recommendation_id, r.move_index) == (record.recommendation_id, record.move_index):
                return r
        self.records[record.operation_id] = record
        return record

    def save_migration(self, record: MigrationRecord) -> None:
        self.records[record.operation_id] = record

    def get_migration(self, operation_id: str) -> MigrationRecord | None:
        return self.records.get(operation_id)

    def unfinished_migrations(self) -> list[MigrationRecord]:
        return [r for r in self.records.values() if not r.phase.final]


class RecordingObserver:
    """Keeps every progress and every ended record it is told about."""

    def __init__(self) -> None:
        self.seen: list[Progress] = []
        self.ended: list[MigrationRecord] = []

    def progress(self, record: MigrationRecord, progress: Progress) -> None:
        self.seen.append(progress)

    def finished(self, record: MigrationRecord) -> None:
        self.ended.append(record)


class ManualExecutor:
    """The migrations use case's executor, run by the test: a submitted move is stored queued and stays so until
    the test ends it (`end`), which tells the observer as the real executor does."""

    def __init__(self, store: MigrationStore, observer: ExecutionObserver, clock: Callable[[], float]) -> None:
        self._store = store
        self._observer = observer
        self._clock = clock
        self.submitted: list[str] = []

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0,
               attempt: int = 1, operation_id: str = "") -> MigrationRecord:
        record = MigrationRecord(operation_id or new_id(), recommendation_id, move.vm_id, move.source_host_id,
                                 move.target_host_id, move.parameters, move.predicted_cost, self._clock(),
                                 actor=actor, move_index=move_index, inputs=move.inputs, attempt=attempt)
        stored = self._store.insert_migration(record)
        if stored is record:
            self.submitted.append(record.operation_id)
        return stored

    def get(self, operation_id: str) -> MigrationRecord:
        record = self._store.get_migration(operation_id)
        if record is None:
            raise NotFound("operation_id", "operation", operation_id)
        return record

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
        record = self.get(operation_id)
        if record.phase.final:
            raise FailedPrecondition(f"operation {operation_id} already ended: {record.phase}")
        if record.phase is Phase.POSTCOPY:
            raise FailedPrecondition(f"operation {operation_id} is in post-copy: it will finish")
        return self.end(operation_id, Phase.ABORTED)

    def watch(self, operation_id: str, *, alive: Callable[[], bool]) -> Iterator[Watched]:
        yield Watched(self.get(operation_id), None, Estimate())

    def migrating_vms(self) -> frozenset[str]:
        return frozenset(r.vm_id for r in self._store.unfinished_migrations())

    def enter(self, operation_id: str, phase: Phase) -> None:
        """The operation reached a phase short of its end (e.g. post-copy)."""
        self._store.save_migration(replace(self.get(operation_id), phase=phase))

    def end(self, operation_id: str, phase: Phase) -> MigrationRecord:
        record = self.get(operation_id)
        result = MigrationResult(phase is Phase.SUCCEEDED, "" if phase is Phase.SUCCEEDED else f"{phase} by the test",
                                 total_time_ms=1000.0, downtime_ms=50.0, transferred_mib=512.0)
        final = replace(record, phase=phase, outcome=result, finished_at_s=self._clock())
        self._store.save_migration(final)
        self._observer.finished(final)
        return final
