"""Where the advisor's state lives, chosen by one setting: `database_url` empty is the SQLite file in the data
directory (the embedded default); `postgresql://USER@HOST:PORT/DATABASE` is a PostgreSQL database that several
advisors may share, each keeping only its local files (lock, addresses, retraining runs) in its data directory."""

from __future__ import annotations

from pathlib import Path

from advisor.adapters.postgres.db import PostgresDatabase
from advisor.adapters.sql.database import Database
from advisor.adapters.sqlite import backup as sqlite_backup
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.domain.errors import ConfigError

DATABASE_FILE = "advisor.sqlite3"


def open_database(database_url: str, data_dir: Path, *, existing: bool = False) -> Database:
    """The database of these settings, its schema brought up to date; with `existing`, an SQLite file must be there
    already (a command that reads what a server wrote)."""
    if database_url:
        return PostgresDatabase(database_url)
    path = data_dir / DATABASE_FILE
    if existing and not path.is_file():
        raise ConfigError(f"no advisor database in {data_dir} ({path.name} is missing)")
    return SqliteDatabase(path)


# PostgreSQL has its own tools for this, which know its roles, extensions and versions better than we could.
PG_DUMP_HINT = ("the database is PostgreSQL: back it up with `pg_dump --format=custom --file FILE URL` and restore "
                "it with `pg_restore --clean --dbname URL FILE` (docs/storage.md)")


def backup_database(database_url: str, data_dir: Path, output: Path) -> sqlite_backup.BackupSummary:
    """An online backup of the SQLite database of `data_dir` to `output`."""
    if database_url:
        raise ConfigError(PG_DUMP_HINT)
    return sqlite_backup.backup(data_dir / DATABASE_FILE, output)


def restore_database(database_url: str, data_dir: Path, backup_file: Path) -> sqlite_backup.BackupSummary:
    """`backup_file` in place of the SQLite database of `data_dir` (no advisor serving it), the old one kept."""
    if database_url:
        raise ConfigError(PG_DUMP_HINT)
    return sqlite_backup.restore(backup_file, data_dir, DATABASE_FILE)
