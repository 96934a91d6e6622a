"""Test doubles of the executor's ports: a migration store in memory and an observer that records."""

from __future__ import annotations

from advisor.domain.migration import MigrationRecord, Progress


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
