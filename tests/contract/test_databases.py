"""The SQL stores on both engines, SQLite and a real PostgreSQL server, each database opened twice as two
processes would open it (the server and the `advisor tokens` command, or two replicas): the races of the
lifecycle have one winner, tokens and sessions are seen across connections, the audit trail is append-only,
samples and definitions come back as saved, and the schema is migrated once by yoyo."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest

from advisor.adapters.postgres.db import PostgresDatabase
from advisor.adapters.sql.access import AuditLog, TokenStore
from advisor.adapters.sql.database import Database, StorageError
from advisor.adapters.sql.definitions import DefinitionArchive
from advisor.adapters.sql.samples import SampleArchive
from advisor.adapters.sql.sessions import SessionStore
from advisor.adapters.sql.store import SqlStore
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.domain.access import AuditEntry, Role, TokenError
from advisor.domain.errors import FailedPrecondition
from advisor.domain.recommendation import Approve, Event, Recommendation, RecommendationState, Reject, StartMove
from advisor.execution.hypervisor import GuestDefinition
from advisor.features.samples import Series
from advisor.usecases.records import apply_event
from advisor.web import login
from tests.contract.test_stores import operation, proposed
from tests.support.postgres import PostgresServer

Open = Callable[[], Database]
S = RecommendationState
DECIDERS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def open_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens the test's database once more at each call; every one opened is closed at the end. PostgreSQL's is
    reached over TCP and over its unix socket in turn."""
    urls: list[str] = []
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = request.getfixturevalue("postgres_database")
        urls = [server.url(name), server.url(name, unix_socket=True)]
    opened: list[Database] = []

    def open_again() -> Database:
        database = (PostgresDatabase(urls[len(opened) % 2]) if urls
                    else SqliteDatabase(tmp_path / "advisor.sqlite3"))
        opened.append(database)
        return database

    yield open_again
    for database in opened:
        database.close()


def race(stores: list[SqlStore], rec_id: str, event_of: Callable[[int], Event]) -> list[tuple[int, Recommendation]]:
    """DECIDERS threads, spread over `stores`, apply their events to one recommendation at once; the winners."""
    start = threading.Barrier(DECIDERS)
    won: list[tuple[int, Recommendation]] = []
    refused: list[int] = []

    def decide(i: int) -> None:
        start.wait()
        try:
            won.append((i, apply_event(stores[i % len(stores)], rec_id, event_of(i), f"decider-{i}", 10.0)))
        except FailedPrecondition:
            refused.append(i)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(DECIDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) + len(refused) == DECIDERS
    return won


def test_of_eight_concurrent_deciders_over_two_processes_exactly_one_wins(open_database: Open) -> None:
    stores = [SqlStore(open_database()), SqlStore(open_database())]
    for round_ in range(5):
        rec_id = f"r{round_}"
        stores[0].add_recommendation(proposed(rec_id))
        won = race(stores, rec_id, lambda i: Approve(f"go {i}") if i % 2 else Reject(f"no {i}"))
        assert len(won) == 1, won
        winner, decided = won[0]
        stored = stores[1].get_recommendation(rec_id)
        assert stored == decided and stored.revision == 1
        assert stored.state is (S.APPROVED if winner % 2 else S.REJECTED)
        assert stored.history[-1].actor == f"decider-{winner}"


def test_an_approved_move_is_started_once_whoever_races_to_start_it(open_database: Open) -> None:
    stores = [SqlStore(open_database()), SqlStore(open_database())]
    stores[0].add_recommendation(proposed("r"))
    apply_event(stores[0], "r", Approve(), "alice", 5.0)
    won = race(stores, "r", lambda i: StartMove(0, f"op{i}"))
    assert len(won) == 1
    inserted = {stores[i % 2].insert_migration(operation(f"op{i}")).operation_id for i in range(DECIDERS)}
    assert len(inserted) == 1 and [r.operation_id for r in stores[1].migrations_of("r")] == list(inserted)


def test_tokens_made_or_revoked_by_another_connection_count_on_the_next_call(open_database: Open) -> None:
    server, command = TokenStore(open_database(), lambda: 1.0), TokenStore(open_database(), lambda: 2.0)
    assert server.authenticate("adv_" + "x" * 43) is None
    token = command.create("alice", Role.OPERATOR)
    caller = server.authenticate(token)
    assert caller is not None and (caller.name, caller.role) == ("alice", Role.OPERATOR)
    with pytest.raises(TokenError, match="exists already"):
        server.create("alice", Role.READER)
    command.revoke("alice")
    assert server.authenticate(token) is None
    again = server.create("alice", Role.READER)  # a revoked name may be given again
    assert [(t.name, t.role, t.revoked_at_s) for t in command.list()] == [("alice", Role.READER, None)]
    assert command.authenticate(again) is not None and command.authenticate(token) is None


def test_a_token_check_never_waits_behind_the_stores_work_and_still_sees_a_revocation(open_database: Open) -> None:
    database = open_database()
    server, command = TokenStore(database, lambda: 1.0), TokenStore(open_database(), lambda: 2.0)
    kept, revoked = command.create("kept", Role.READER), command.create("revoked", Role.READER)
    assert server.authenticate(revoked) is not None  # now in the server's cache
    command.revoke("revoked")
    answers: dict[str, object] = {}

    def check() -> None:
        answers.update(kept=server.authenticate(kept), revoked=server.authenticate(revoked))

    with database.transaction():  # a store's write under way on the server's connection
        checker = threading.Thread(target=check)
        checker.start()
        checker.join(30)  # not a timing: a check waiting for the transaction would wait until it ends
        finished_inside = not checker.is_alive()
    checker.join()
    assert finished_inside
    assert answers["revoked"] is None and getattr(answers["kept"], "name", None) == "kept"


def test_the_audit_trail_is_append_only_and_pruned_by_age(open_database: Open) -> None:
    database = open_database()
    audit = AuditLog(database)
    for at in (1.0, 2.0, 3.0):
        audit.append(AuditEntry(at, "alice", "operator", "ipv4:127.0.0.1:5", "Approve", "r1", "OK", f"at {at}"))
    assert [e.at_s for e in audit.recent()] == [3.0, 2.0, 1.0]
    with pytest.raises(Exception, match="append-only"), database.transaction() as db:
        db.execute("UPDATE audit SET actor = 'mallory'")
    assert {e.actor for e in AuditLog(open_database()).recent()} == {"alice"}
    assert audit.prune(older_than_s=2.5) == 2 and [e.at_s for e in audit.recent()] == [3.0]
    audit.append(AuditEntry(4.0, "anonymous", "", "ipv4:127.0.0.1:6", "GetRecommendation", "r\x00", "NOT_FOUND", ""))
    assert audit.recent(1)[0].target == "r\\x00"  # what a client sent, kept whole (PostgreSQL's text has no NUL)


def test_a_login_code_opens_one_session_from_any_process(open_database: Open) -> None:
    first, second = open_database(), open_database()
    TokenStore(first, lambda: 1.0).create("web", Role.READER)
    sessions = SessionStore(first)
    token_hash = sessions.active_token_hash("web")
    assert token_hash is not None
    code, stored = login.new_code(token_hash, 1.0)
    sessions.add_code(stored)
    claimed = SessionStore(second).claim_code(login.digest(code), 2.0)
    assert claimed is not None and claimed.token_name == "web" and claimed.token_active
    assert sessions.claim_code(login.digest(code), 3.0) is None


def test_saved_samples_and_definitions_come_back_from_another_connection(open_database: Open) -> None:
    first, second = open_database(), open_database()
    times = np.array([1.0, 2.0, 3.5])
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert SampleArchive(first).save([Series("vm", "v1", times, values),
                                      Series("host", "h1", times[:1], values[:1, :1])]) == 2
    SampleArchive(first).save([Series("host", "h1", times[:0], values[:0, :1])])  # no samples left: deleted
    (loaded,) = SampleArchive(second).load({"vm": 2, "host": 1})
    assert (loaded.kind, loaded.entity_id) == ("vm", "v1")
    assert np.array_equal(loaded.times, times) and np.array_equal(loaded.values, values)
    (wider,) = SampleArchive(second).load({"vm": 3, "host": 1})  # saved before a field was added: not measured
    assert np.array_equal(wider.values[:, :2], values) and np.isnan(wider.values[:, 2]).all()
    assert SampleArchive(second).load({"vm": 1, "host": 1}) == []  # never cut: a narrower reader passes it over

    DefinitionArchive(first).keep("v1", "h1", GuestDefinition("<domain>100%</domain>", True), 5.0)
    assert DefinitionArchive(second).definition("v1") == GuestDefinition("<domain>100%</domain>", True)
    assert DefinitionArchive(second).known(["v1", "v2"]) == {"v1"}


def test_the_schema_is_migrated_once_and_a_newer_one_is_refused(open_database: Open) -> None:
    store = SqlStore(open_database())
    store.add_recommendation(proposed("kept"))
    again = SqlStore(open_database())  # nothing left to apply: the data stays
    assert again.get_recommendation("kept") == proposed("kept")
    with again.database.transaction() as db:  # as a newer advisor would leave it
        db.execute("INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) "
                   "VALUES ('f00d', '9999_from_the_future', CURRENT_TIMESTAMP)")
    with pytest.raises(StorageError, match="a newer advisor migrated it"):
        open_database()


def test_a_recommendation_executing_elsewhere_is_never_pruned(open_database: Open) -> None:
    store = SqlStore(open_database())
    for i in range(3):
        store.add_recommendation(proposed(f"r{i}", created_at_s=float(i)))
    r0 = store.get_recommendation("r0")
    assert r0 is not None
    store.replace_recommendation(r0, replace(r0, state=S.EXECUTING))
    assert SqlStore(open_database()).prune_recommendations(keep=1, older_than_s=0.0) == 1
    assert [r.id for r in store.list_recommendations(None, 10)] == ["r2", "r0"]


def test_after_a_restart_of_postgresql_each_pooled_connection_fails_at_most_one_call(
        postgres_server: PostgresServer, postgres_url: str) -> None:
    """What a restart costs today (docs/storage.md): the calls that draw a connection it cut, one per connection
    in the pool; then the pool's new connections serve, and nothing stored is lost."""
    database = PostgresDatabase(postgres_url)
    try:
        store = SqlStore(database)
        store.add_recommendation(proposed("kept"))
        pooled = database.pool.get_stats()["pool_size"]
        postgres_server.restart()
        failed = 0
        for _ in range(pooled + 1):
            try:
                assert store.get_recommendation("kept") == proposed("kept")
                break
            except psycopg.OperationalError:
                failed += 1
        assert failed <= pooled and store.get_recommendation("kept") == proposed("kept")
    finally:
        database.close()
