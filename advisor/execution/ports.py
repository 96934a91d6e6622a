"""What execution is given: where its operations are stored, and who is told how they go (wired in advisor/app.py)."""

from __future__ import annotations

from typing import Protocol

from advisor.domain.migration import MigrationRecord, Progress


class MigrationStore(Protocol):
    def insert_migration(self, record: MigrationRecord) -> MigrationRecord: ...

    def save_migration(self, record: MigrationRecord) -> None: ...

    def get_migration(self, operation_id: str) -> MigrationRecord | None: ...

    def unfinished_migrations(self) -> list[MigrationRecord]: ...


class ExecutionObserver(Protocol):
    """Told about progress and endings, e.g. to export metrics and update recommendations and inventory."""

    def progress(self, record: MigrationRecord, progress: Progress) -> None: ...

    def finished(self, record: MigrationRecord) -> None: ...
