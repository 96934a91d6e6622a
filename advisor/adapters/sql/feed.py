"""The feeds between replicas. Samples (`sample_feed`): each replica writes what was pushed to it, a batch a row,
and reads the rows the others wrote (advisor.sample_sharing keeps its place). A batch is JSON: each sample's
fields in the order of its dataclass, so a row is read whole or, if written by a version with other fields,
skipped whole. The inventory (`inventory_feed`): which hosts and VMs a change touched, written in the change's
own transaction; the others read those hosts and VMs again from the inventory's tables, which are the truth."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter

from advisor.adapters.sql.database import Connection, Database
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import HostSample, VmSample

log = logging.getLogger("advisor.storage")
# A sample's fields in order (dataclasses.astuple copies deeply, and took most of a publication's time)
_HOST_ROW = attrgetter(*(f.name for f in fields(HostSample)))
_VM_ROW = attrgetter(*(f.name for f in fields(VmSample)))


@dataclass(frozen=True)
class Batch:
    """One row of the feed: its number, and its samples (none for a row of the reader's own)."""

    seq: int
    hosts: list[HostSample]
    vms: list[VmSample]


class SampleFeed:
    def __init__(self, database: Database) -> None:
        self._db = database

    def publish(self, origin: str, written_at_s: float, hosts: Sequence[HostSample],
                vms: Sequence[VmSample]) -> None:
        body = json.dumps({"hosts": [_HOST_ROW(s) for s in hosts], "vms": [_VM_ROW(s) for s in vms]})
        with self._db.transaction() as db:
            db.execute("INSERT INTO sample_feed (origin, written_at_s, body) VALUES (?, ?, ?)",
                       (origin, written_at_s, body))

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Batch]:
        """The rows numbered above `after` or in `also`, in order; those `origin` wrote come without their
        samples (the reader has them), so that the reader still sees their numbers."""
        where = "seq > ?" + (f" OR seq IN ({', '.join('?' * len(also))})" if also else "")
        with self._db.reading() as db:
            rows = db.execute(f"SELECT seq, CASE WHEN origin = ? THEN NULL ELSE body END FROM sample_feed "
                              f"WHERE {where} ORDER BY seq", (origin, after, *also)).fetchall()
        return [_batch(int(seq), body) for seq, body in rows]

    def prune(self, before_s: float) -> int:
        """Delete the rows written before `before_s`; return how many."""
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM sample_feed WHERE written_at_s < ?", (before_s,)).rowcount)


def _batch(seq: int, body: str | None) -> Batch:
    if body is None:
        return Batch(seq, [], [])
    try:
        decoded = json.loads(body)
        return Batch(seq, [HostSample(*row) for row in decoded["hosts"]], [VmSample(*row) for row in decoded["vms"]])
    except (ValueError, TypeError, KeyError) as error:
        log.warning("sample feed row skipped: not of this version's fields", extra={"seq": seq, "error": str(error)})
        return Batch(seq, [], [])


@dataclass(frozen=True)
class Changed:
    """One row of the inventory's feed: the hosts and VMs a replica changed (pushed or removed), by id; none for a
    row of the reader's own."""

    seq: int
    host_ids: list[str]
    vm_ids: list[str]


def publish_inventory(db: Connection, origin: str, written_at_s: float, change: InventoryChange) -> None:
    """Say, in the transaction `db` that stores `change`, which hosts and VMs it changed."""
    body = json.dumps({"hosts": [h.id for h in change.hosts] + list(change.removed_host_ids),
                       "vms": [v.id for v in change.vms] + list(change.removed_vm_ids)})
    db.execute("INSERT INTO inventory_feed (origin, written_at_s, body) VALUES (?, ?, ?)",
               (origin, written_at_s, body))


class InventoryFeed:
    def __init__(self, database: Database) -> None:
        self._db = database

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Changed]:
        """The rows numbered above `after` or in `also`, in order; those `origin` wrote come without their ids."""
        where = "seq > ?" + (f" OR seq IN ({', '.join('?' * len(also))})" if also else "")
        with self._db.reading() as db:
            rows = db.execute(f"SELECT seq, CASE WHEN origin = ? THEN NULL ELSE body END FROM inventory_feed "
                              f"WHERE {where} ORDER BY seq", (origin, after, *also)).fetchall()
        out = []
        for seq, body in rows:
            ids = json.loads(body) if body is not None else {"hosts": [], "vms": []}
            out.append(Changed(int(seq), list(ids["hosts"]), list(ids["vms"])))
        return out

    def prune(self, before_s: float) -> int:
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM inventory_feed WHERE written_at_s < ?", (before_s,)).rowcount)
