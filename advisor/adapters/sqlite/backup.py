"""Backing up and restoring the SQLite database of a data directory.

A backup is SQLite's online backup of the file (one consistent snapshot, taken while the server runs and writes: WAL
lets a reader copy while writers go on), written beside its destination first and renamed into place, never over an
existing file. A restore needs the data directory's lock (no advisor may be serving it), checks that the file is a
whole advisor database, keeps the current one beside it (`advisor.sqlite3.before-restore-<UTC time>`, `-2`, `-3`...
added rather than replace one kept before; a corrupt one kept as it is, with its WAL) and puts the backup in its
place; the schema is brought up to date when the advisor next opens it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from advisor.adapters.datadir import DataDirLock
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.domain.errors import ConfigError

# What an advisor database has whatever its version; a file without them is not one.
REQUIRED_TABLES = ("recommendations", "migrations", "audit", "tokens")
COUNTED_TABLES = ("recommendations", "migrations", "audit")


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    size_bytes: int
    rows: dict[str, int]  # per table of COUNTED_TABLES
    kept: Path | None = None  # restore: where the database it replaced was kept


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)


def _check(path: Path) -> dict[str, int]:
    """The row counts of an advisor database that SQLite finds whole; ConfigError otherwise."""
    try:
        with closing(_read_only(path)) as db:
            (verdict,) = db.execute("PRAGMA integrity_check").fetchone()
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            if verdict != "ok" or missing:
                raise ConfigError(f"{path} is not a whole advisor database "
                                  f"({'missing tables ' + ', '.join(missing) if missing else verdict})")
            return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED_TABLES}
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"{path} is not an SQLite database ({error})") from None


def _durable(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def backup(database: Path, output: Path) -> BackupSummary:
    """Copy the database at `database` to `output` (which must not exist) while it may be in use."""
    if not database.is_file():
        raise ConfigError(f"no advisor database at {database}")
    if output.exists():
        raise ConfigError(f"{output} exists: a backup never overwrites a file; give a new name")
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: no directory {output.parent} to write the backup in")
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        try:
            with closing(_read_only(database)) as source, closing(sqlite3.connect(partial)) as target:
                source.backup(target)  # every page in one step: one consistent snapshot
            _durable(partial)
        except (OSError, sqlite3.OperationalError) as error:  # a directory not writable, a full disk
            raise ConfigError(f"cannot write the backup {output}: {error}") from None
        rows = _check(partial)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return BackupSummary(output, output.stat().st_size, rows)


def _kept_name(target: Path) -> Path:
    """A name beside `target` that no file has: two restores in one second keep both databases they replace."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = target.with_name(f"{target.name}.before-restore-{stamp}")
    n = 1
    while kept.exists() or kept.with_name(kept.name + "-wal").exists():
        n += 1
        kept = target.with_name(f"{target.name}.before-restore-{stamp}-{n}")
    return kept


def restore(backup_file: Path, data_dir: Path, database_file: str) -> BackupSummary:
    """Put `backup_file` in place of the data directory's database, keeping the one it replaces."""
    if not backup_file.is_file():
        raise ConfigError(f"no backup at {backup_file}")
    target = data_dir / database_file
    if target.exists() and backup_file.samefile(target):  # by path, symbolic or hard link
        # Moved aside first, the input would be gone by the time it was copied: nothing left in place.
        raise ConfigError(f"{backup_file} is the database to restore over; restore from a backup of it")
    rows = _check(backup_file)
    lock = DataDirLock(data_dir)  # refused while an advisor serves the directory
    try:
        kept = None
        if target.exists():
            whole = True
            try:
                with closing(sqlite3.connect(target)) as current:  # fold its WAL in: the kept file is whole by itself
                    current.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                whole = False  # corrupt: the very case for a restore; kept as it is, with its WAL
            kept = _kept_name(target)
            target.replace(kept)
            for suffix in ("-wal", "-shm"):
                beside = target.with_name(target.name + suffix)
                if whole:
                    beside.unlink(missing_ok=True)
                elif beside.exists():
                    beside.replace(kept.with_name(kept.name + suffix))
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(backup_file, partial)
        _durable(partial)
        partial.replace(target)
        SqliteDatabase(target).close()  # the schema brought up to date now, so a bad file is said here
    finally:
        lock.release()
    return BackupSummary(target, target.stat().st_size, rows, kept)
