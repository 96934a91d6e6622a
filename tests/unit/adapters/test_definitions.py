"""Guests' definitions kept in SQLite (written only when they change, read back after a reopening), and a
restart's record stored and read back as a restart."""

from __future__ import annotations

from pathlib import Path

from advisor.adapters.sql.definitions import DefinitionArchive
from advisor.adapters.sqlite.db import SqliteDatabase, SqliteStore
from advisor.domain.evacuation import RESTART_PARAMETERS
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import MoveKind
from advisor.execution.hypervisor import GuestDefinition
from advisor.physics.cold import restart_cost

XML = "<domain><name>vm1</name></domain>"


def test_a_definition_is_kept_once_per_change_and_survives_a_reopening(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "advisor.sqlite3")
    archive = DefinitionArchive(database)
    assert archive.keep("vm1", "hv1", GuestDefinition(XML, False), 10.0)
    assert not archive.keep("vm1", "hv1", GuestDefinition(XML, False), 20.0)  # the same: not written again
    assert archive.keep("vm1", "hv2", GuestDefinition(XML, False), 30.0)  # moved: written
    assert archive.keep("vm1", "hv2", GuestDefinition(XML, True), 40.0)  # now persistent
    database.close()
    reopened = DefinitionArchive(SqliteDatabase(tmp_path / "advisor.sqlite3"))
    assert reopened.definition("vm1") == GuestDefinition(XML, True)
    assert reopened.definition("vm2") is None and reopened.known(["vm1", "vm2"]) == {"vm1"}


def test_a_restart_is_stored_and_read_back_as_a_restart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "advisor.sqlite3")
    record = MigrationRecord("op1", "rec1", "vm1", "hv1", "hv2", RESTART_PARAMETERS, restart_cost(), 1.0)
    store.insert_migration(record)
    read = store.get_migration("op1")
    assert read is not None and read.parameters.kind is MoveKind.RESTART and read == record
    store.close()
