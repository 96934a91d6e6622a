"""What the stores of this package need of a database: transactions and reads on a DB-API-like connection whose
parameters are `?` placeholders, whatever the engine.

The SQL the stores send is the common ground of SQLite (3.35 or later) and PostgreSQL: upserts as `INSERT ... ON
CONFLICT ... DO UPDATE`, `ON CONFLICT DO NOTHING`, `RETURNING`; no `INSERT OR REPLACE`, no `LIMIT -1`. State
changes that two processes may race for are single conditional statements (compare-and-set on a revision, a
claim on a NULL column, an insert that does nothing on conflict), so they hold under PostgreSQL's READ COMMITTED
across processes as they do under SQLite's single writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from advisor.domain.errors import SetupError


class StorageError(SetupError, RuntimeError):
    """The database cannot be opened or is of a schema this version does not know."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class Database(Protocol):
    @property
    def integrity_error(self) -> type[Exception]:
        """Raised by a statement that breaks a unique constraint (the transaction is then rolled back)."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        ...

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection to read from (each statement sees what was committed before it)."""
        ...

    def checking(self) -> AbstractContextManager[Connection]:
        """A connection for the small reads made on every call (the tokens), which never waits behind the stores'
        work: where the stores share one connection under a lock (SQLite), a second connection of its own."""
        ...

    def data_version(self, db: Connection) -> object | None:
        """A value that changes whenever another connection commits (SQLite's data_version), or None where the
        engine has no cheap one: a cache of the tokens is then read again on every call."""
        ...

    def size_bytes(self) -> int:
        """The space the database takes (its files, or what PostgreSQL reports)."""
        ...

    def close(self) -> None: ...
