"""A PostgreSQL database: a pool of psycopg 3 connections, its schema kept by yoyo-migrations (the files of
migrations/, applied on open).

Each transaction takes a connection from the pool for its length and runs at READ COMMITTED; the stores' races
are single conditional statements (advisor.adapters.sql.database), which PostgreSQL settles with row locks: a
second UPDATE of a row waits for the first to commit, then finds its condition no longer true.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from advisor.adapters.sql.database import Connection, StorageError
from advisor.adapters.sql.migrations import migrate

SCHEMES = ("postgresql", "postgres")
POOL_MIN_SIZE = 2
# Connections at most: a call holds one only for a statement or a transaction, so a few serve the 48 calls the
# server runs at once; PostgreSQL's own default allows 100 connections for every replica together.
POOL_MAX_SIZE = 12
CONNECT_TIMEOUT_S = 10.0
# The stores' transactions are a few statements sent back to back; one left open longer lost its client (a replica
# cut off mid-transaction) and would hold its row locks, the leader's lease among them, until TCP gave up (hours):
# the server ends it after this.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 5000
# The client's side of a cut: a statement sent into a partition (no reset comes back) would wait for TCP's
# retransmissions for a quarter of an hour; the kernel gives it up after TCP_USER_TIMEOUT_MS unacknowledged, and
# keepalives notice a silent server while a reply is awaited, so that a replica cut off fails its calls and can
# stop (a deposed leader exits, to start again as a follower) rather than hang. Ignored over a unix socket.
TCP_USER_TIMEOUT_MS = 15000
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 5,
              "tcp_user_timeout": TCP_USER_TIMEOUT_MS}


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}")


def redacted(url: str) -> str:
    """`url` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    """The stores' `?` placeholders as psycopg's `%s`, a literal `%` doubled (their SQL has `?` nowhere else)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A pooled connection, spoken to with `?` placeholders like sqlite3's."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._connection.execute(_pyformat(sql), parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        cursor = self._connection.cursor()
        cursor.executemany(_pyformat(sql), seq_of_parameters)
        return cursor


class PostgresDatabase:
    integrity_error = psycopg.IntegrityError

    def __init__(self, url: str, *, min_size: int = POOL_MIN_SIZE, max_size: int = POOL_MAX_SIZE) -> None:
        if urlsplit(url).scheme not in SCHEMES:
            raise StorageError(f"{redacted(url)}: not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE)")
        self.url = url
        self.where = redacted(url)
        try:
            migrate(url.replace(urlsplit(url).scheme, "postgresql+psycopg", 1), "advisor.adapters.postgres",
                    self.where)
        except psycopg.Error as error:
            raise StorageError(f"{self.where}: cannot use this database ({' '.join(str(error).split())})") from None
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False, name="advisor",
                                   kwargs={"autocommit": True, **KEEPALIVES}, timeout=CONNECT_TIMEOUT_S,
                                   configure=_configure)
        self.pool.open()
        try:
            self.pool.wait(CONNECT_TIMEOUT_S)
        except PoolTimeout:
            self.pool.close()
            raise StorageError(f"{self.where}: no connection within {CONNECT_TIMEOUT_S:.0f} s") from None

    @contextmanager
    def transaction(self) -> Iterator[_Connection]:
        with self.pool.connection() as connection, connection.transaction():
            yield _Connection(connection)

    @contextmanager
    def reading(self) -> Iterator[_Connection]:
        with self.pool.connection() as connection:
            yield _Connection(connection)

    def checking(self) -> AbstractContextManager[_Connection]:
        """The pool's connections, as for any read: none is held by the stores' work."""
        return self.reading()

    def data_version(self, db: Connection) -> None:
        """PostgreSQL says nothing cheap about other sessions' commits: readers of a cache read again."""
        return None

    def size_bytes(self) -> int:
        with self.reading() as db:
            (size,) = db.execute("SELECT pg_database_size(current_database())").fetchall()[0]
        return int(size)

    def close(self) -> None:
        self.pool.close()
