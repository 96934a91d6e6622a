"""`advisor backup` and `advisor restore`: the data directory's SQLite database to and from a file. A backup is
taken while the advisor runs; a restore needs it stopped and keeps the database it replaces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from advisor.cli.common import store_args, store_location


def _summary(verb: str, summary: Any) -> str:
    rows = ", ".join(f"{count:,} {table}" for table, count in summary.rows.items())
    line = f"{verb} {summary.path} ({summary.size_bytes / 2**20:.1f} MiB: {rows})"
    return line + (f"; the database it replaced is kept as {summary.kept}" if summary.kept else "")


def cmd_backup(args: argparse.Namespace) -> int:
    from advisor.app import backup

    data_dir, url = store_location(args)
    print(_summary("wrote", backup(url, data_dir, args.output)))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from advisor.app import restore

    data_dir, url = store_location(args)
    print(_summary("restored", restore(url, data_dir, args.input)))
    return 0


def add_backup_command(sub: Any) -> None:
    p = sub.add_parser("backup", help="back up the advisor's database to a file, while it runs",
                       description="SQLite's online backup of the data directory's database: one consistent "
                       "snapshot, taken while the advisor serves and writes; never over an existing file. For "
                       "PostgreSQL use pg_dump (the command says how).")
    p.add_argument("--output", type=Path, required=True, help="the backup file to write (must not exist)")
    store_args(p)
    p.set_defaults(func=cmd_backup)


def add_restore_command(sub: Any) -> None:
    p = sub.add_parser("restore", help="put a backup in place of the advisor's database (advisor stopped)",
                       description="Checks the file is a whole advisor database, keeps the current one beside it "
                       "(advisor.sqlite3.before-restore-TIME) and puts the backup in its place; refused while an "
                       "advisor serves the data directory. For PostgreSQL use pg_restore.")
    p.add_argument("--input", type=Path, required=True, help="the backup file")
    store_args(p)
    p.set_defaults(func=cmd_restore)
