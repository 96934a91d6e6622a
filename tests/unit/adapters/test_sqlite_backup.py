"""Backup and restore of the SQLite database: never a kept database overwritten, never the database itself lost,
and every mistake one line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.adapters.sqlite.backup import backup, restore
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.cli.main import main

NAME = "advisor.sqlite3"


def _database(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    SqliteDatabase(data / NAME).close()
    return data / NAME


def test_two_restores_in_one_second_keep_both_databases_they_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    original = _database(data).read_bytes()
    saved = backup(data / NAME, tmp_path / "b.sqlite3")
    first = restore(saved.path, data, NAME)
    second = restore(saved.path, data, NAME)
    assert first.kept and second.kept and first.kept != second.kept
    assert first.kept.read_bytes() == original  # the original is still there


def test_a_corrupt_database_is_kept_untouched_and_the_backup_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    saved = backup(_database(data), tmp_path / "b.sqlite3")
    junk = b"not a database at all " * 500
    (data / NAME).write_bytes(junk)
    restored = restore(saved.path, data, NAME)
    assert restored.kept is not None and restored.kept.read_bytes() == junk
    assert restored.rows == saved.rows


def _advisor(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("link", [False, True])
def test_restoring_the_database_over_itself_is_refused_before_anything_moves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], link: bool) -> None:
    data = tmp_path / "data"
    before = _database(data).read_bytes()
    given = data / NAME
    if link:
        given = tmp_path / "looks-like-a-backup.sqlite3"
        given.symlink_to(data / NAME)
    code, err = _advisor(["restore", "--data-dir", str(data), "--input", str(given)], capsys)
    assert code == 2 and "is the database to restore over" in err and len(err.splitlines()) == 1
    assert (data / NAME).read_bytes() == before and not list(data.glob("*.before-restore-*"))


@pytest.mark.parametrize(("argv", "said"), [
    (["backup", "--output", "{tmp}/nonexist/x.sqlite3"], "no directory"),
    (["tokens", "list"], "no advisor database in"),
    (["tokens", "revoke", "someone"], "no advisor database in"),
])
def test_mistakes_are_one_line_and_make_no_database(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], said: str) -> None:
    data = tmp_path / "TYPO"
    if argv[0] == "backup":
        _database(data)
    code, err = _advisor([a.format(tmp=tmp_path) for a in argv] + ["--data-dir", str(data)], capsys)
    assert code == 2 and said in err and len(err.splitlines()) == 1, err
    assert argv[0] == "backup" or not data.exists()
