"""The leader's lease in the database: one row (`leader_lease`), claimed by one conditional UPDATE, and the fence
that every write of an execution passes (advisor.domain.lease says what a replica does with what it finds).

A claim renews the lease of its holder, or takes a lease that has expired; a new tenure (another holder, or the
same one after its lease lapsed) gets the next term. Two replicas claiming at once are settled by the row's lock:
the second UPDATE waits for the first to commit, then finds the lease no longer expired and matches nothing.

The fence is a no-op UPDATE of the lease row on the condition that its term is still the writer's, run first in
the writer's transaction: it takes the row's lock until the write commits, so a takeover waits for the write, and
a write after a takeover matches nothing and is refused (`Deposed`). Expiry is by the replicas' wall clocks,
which must agree (NTP) to well within the part of the TTL a leader keeps in hand (advisor.domain.lease).
"""

from __future__ import annotations

from advisor.adapters.sql.database import Connection, Database
from advisor.domain.errors import Unavailable
from advisor.domain.lease import Lease

LEASE = "leader"


class Deposed(Unavailable):
    """A write of an execution carried a term that is no longer the lease's: another leader was elected."""


def fence(db: Connection, term: int | None) -> None:
    """Refuse the transaction of `db` unless `term` is still the lease's (None: a replica that never led, or
    SQLite's only process: nothing to check); hold the lease row until it commits."""
    if term is None:
        return
    if db.execute("UPDATE leader_lease SET term = term WHERE name = ? AND term = ?", (LEASE, term)).rowcount != 1:
        raise Deposed(f"this replica's leadership (term {term}) has ended: another leader acts now")


class LeaseTable:
    def __init__(self, database: Database) -> None:
        self._database = database

    def claim(self, holder: str, now_s: float, ttl_s: float) -> Lease:
        """Renew `holder`'s lease or take an expired one, until `now_s + ttl_s`; return the lease as it now is
        (`holder`'s, or another's that still holds)."""
        with self._database.transaction() as db:
            row = db.execute(
                "UPDATE leader_lease SET term = CASE WHEN holder = ? AND expires_at_s >= ? THEN term ELSE term + 1 "
                "END, holder = ?, expires_at_s = ? WHERE name = ? AND (holder = ? OR expires_at_s < ?) "
                "RETURNING holder, term, expires_at_s",
                (holder, now_s, holder, now_s + ttl_s, LEASE, holder, now_s)).fetchone()
            if row is None:
                row = db.execute("SELECT holder, term, expires_at_s FROM leader_lease WHERE name = ?",
                                 (LEASE,)).fetchone()
        return Lease(str(row[0]), int(row[1]), float(row[2]))

    def release(self, holder: str, term: int) -> bool:
        """Let the lease go at once (a clean stop), so that another replica need not wait for it to expire."""
        with self._database.transaction() as db:
            return bool(db.execute("UPDATE leader_lease SET expires_at_s = 0 WHERE name = ? AND holder = ? AND "
                                   "term = ?", (LEASE, holder, term)).rowcount == 1)

    def current(self) -> Lease:
        with self._database.reading() as db:
            row = db.execute("SELECT holder, term, expires_at_s FROM leader_lease WHERE name = ?", (LEASE,)).fetchone()
        return Lease(str(row[0]), int(row[1]), float(row[2]))
