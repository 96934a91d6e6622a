"""The store on an SQLite file: advisor.adapters.sql's store, opened from a path (as tests and tools do) or on the
server's shared database."""

from __future__ import annotations

from pathlib import Path

from advisor.adapters.sql.database import StorageError
from advisor.adapters.sql.store import SqlStore
from advisor.adapters.sqlite.db import SqliteDatabase


class SqliteStore(SqlStore):
    def __init__(self, database: SqliteDatabase | Path) -> None:
        self.database: SqliteDatabase = database if isinstance(database, SqliteDatabase) else SqliteDatabase(database)
        super().__init__(self.database)
        self.path = self.database.path


__all__ = ["SqliteStore", "StorageError"]
