"""The leader's lease (advisor.adapters.sql.lease) on SQLite and on a real PostgreSQL server, each database opened
twice as two replicas open it: of contenders claiming at once exactly one leads; an expired lease goes to the next
claimant with a higher term; a write of an execution with a stale term is refused, and changes nothing."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from advisor.adapters.sql.lease import Deposed, LeaseTable
from advisor.adapters.sql.store import SqlStore
from advisor.domain.migration import Phase
from tests.contract.test_databases import Open, open_database  # noqa: F401 - the fixture
from tests.contract.test_stores import operation

TTL = 10.0
NOW = 1_000_000.0


def test_of_contenders_claiming_at_once_exactly_one_leads(open_database: Open) -> None:  # noqa: F811
    tables = [LeaseTable(open_database()), LeaseTable(open_database())]
    for round_ in range(5):
        now = NOW + round_ * 100  # each round after the last round's lease expired
        found: dict[str, int] = {}
        barrier = threading.Barrier(8)

        def contend(i: int, now: float = now, found: dict[str, int] = found,
                    barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            lease = tables[i % 2].claim(f"replica-{i}", now, TTL)
            found[f"replica-{i}"] = lease.term if lease.holder == f"replica-{i}" else -1

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        leaders = [name for name, term in found.items() if term >= 0]
        assert len(leaders) == 1, found
        assert tables[0].current().holder == leaders[0] and found[leaders[0]] == round_ + 1


def test_a_lease_is_renewed_by_its_holder_and_handed_over_when_it_expires(open_database: Open) -> None:  # noqa: F811
    first, second = LeaseTable(open_database()), LeaseTable(open_database())
    elected = first.claim("a", NOW, TTL)
    assert (elected.holder, elected.term, elected.expires_at_s) == ("a", 1, NOW + TTL)
    assert second.claim("b", NOW + 5, TTL) == elected  # it still holds: b follows
    assert first.claim("a", NOW + 5, TTL).term == 1  # a renews, in the same term
    assert second.claim("b", NOW + 14, TTL).holder == "a"  # renewed at +5: holds until +15
    taken = second.claim("b", NOW + 15.5, TTL)
    assert (taken.holder, taken.term) == ("b", 2)
    assert first.claim("a", NOW + 16, TTL).holder == "b"
    assert second.release("b", 2) and not second.release("b", 1)
    again = first.claim("a", NOW + 17, TTL)  # released: taken at once, in a new term
    assert (again.holder, again.term) == ("a", 3)


def test_an_execution_write_with_a_stale_term_is_refused(open_database: Open) -> None:  # noqa: F811
    old_term: list[int | None] = [None]
    deposed, leader = SqlStore(open_database(), lambda: old_term[0]), SqlStore(open_database())
    lease = LeaseTable(deposed.database)
    old_term[0] = lease.claim("old", NOW, TTL).term
    record = deposed.insert_migration(operation("op1"))  # its term holds: written
    deposed.save_migration(replace(record, phase=Phase.PRECOPY))
    new_term = LeaseTable(leader.database).claim("new", NOW + TTL + 1, TTL).term
    assert new_term == old_term[0] + 1
    for write in (lambda: deposed.insert_migration(operation("op2", move_index=1)),
                  lambda: deposed.save_migration(replace(record, phase=Phase.FAILED)),
                  lambda: deposed.record_outcome(replace(record, phase=Phase.FAILED, finished_at_s=NOW))):
        with pytest.raises(Deposed, match=f"term {old_term[0]}"):
            write()
    assert leader.get_migration("op1").phase is Phase.PRECOPY  # type: ignore[union-attr]
    assert leader.get_migration("op2") is None and leader.outcomes() == []
    fenced = SqlStore(leader.database, lambda: new_term)
    fenced.save_migration(replace(record, phase=Phase.SUCCEEDED))  # the new leader's term holds
    assert leader.get_migration("op1").phase is Phase.SUCCEEDED  # type: ignore[union-attr]
