"""Guests' last known definitions, kept so that a guest can be restarted elsewhere once its host is down (the
definition can only be read from a host that is up). A definition is written only when it changed: the
telemetry reads every guest's often, and the XML is a few KiB."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable

from advisor.adapters.sql.database import Database
from advisor.execution.hypervisor import GuestDefinition


class DefinitionArchive:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, bytes]] = {}  # vm id -> (host id, digest) of what is stored

    def keep(self, vm_id: str, host_id: str, definition: GuestDefinition, read_at_s: float) -> bool:
        """Store the definition of `vm_id` as read on `host_id`; False when it is the one stored already."""
        digest = hashlib.sha256(f"{int(definition.persistent)}{definition.xml}".encode()).digest()
        with self._lock:
            if self._seen.get(vm_id) == (host_id, digest):
                return False
            with self._db.transaction() as db:
                db.execute("INSERT INTO definitions (vm_id, host_id, persistent, xml, read_at_s) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (vm_id) DO UPDATE SET host_id = excluded.host_id, "
                           "persistent = excluded.persistent, xml = excluded.xml, read_at_s = excluded.read_at_s",
                           (vm_id, host_id, int(definition.persistent), definition.xml, read_at_s))
            self._seen[vm_id] = (host_id, digest)
        return True

    def definition(self, vm_id: str) -> GuestDefinition | None:
        with self._db.reading() as db:
            row = db.execute("SELECT xml, persistent FROM definitions WHERE vm_id = ?", (vm_id,)).fetchone()
        return None if row is None else GuestDefinition(row[0], bool(row[1]))

    def known(self, vm_ids: Iterable[str]) -> set[str]:
        """Those of `vm_ids` whose definition is known."""
        wanted = set(vm_ids)
        with self._db.reading() as db:
            rows = db.execute("SELECT vm_id FROM definitions").fetchall()
        return {vm_id for (vm_id,) in rows if vm_id in wanted}
