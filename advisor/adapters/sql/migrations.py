"""One schema-migration mechanism for both engines: yoyo-migrations, reading the SQL files of an engine's
`migrations/` folder (`0001_schema.sql`, then one file per change, never edited once released).

yoyo records what it applied in its own tables (`_yoyo_migration`, `_yoyo_log`) and holds a lock row while it
applies, so that replicas starting together migrate once. A database that has a migration this advisor does not
know was migrated by a newer advisor, and is refused rather than half understood.
"""

from __future__ import annotations

import functools
from typing import Any

from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

from advisor.adapters.sql.database import StorageError

LOCK_TIMEOUT_S = 60.0  # another process migrating the same database this long: something is wrong, say so


def migrate(url: str, package: str, where: str) -> int:
    """Apply the migrations of `package`'s `migrations/` folder not yet applied to the database at `url` (a yoyo
    URL); return how many were. `where` names the database in errors, without credentials."""
    migrations = _migrations(package)
    backend = get_backend(url)
    try:
        unknown = set(backend.get_applied_migration_hashes()) - {m.hash for m in migrations}
        if unknown:
            raise StorageError(f"{where}: the database has {len(unknown)} schema migration(s) this advisor does not "
                               "know (a newer advisor migrated it); run that version, or restore a backup")
        if not backend.to_apply(migrations):
            return 0  # the common case takes no lock: a process killed now leaves nothing behind
        with backend.lock(LOCK_TIMEOUT_S):
            pending = backend.to_apply(migrations)  # again: another process may have applied them meanwhile
            backend.apply_migrations(pending)
        return len(pending)
    except LockTimeout as error:
        raise StorageError(f"{where}: {error}") from None
    finally:
        backend.connection.close()


@functools.cache
def _migrations(package: str) -> Any:
    """The migrations of `package`, read once per process (yoyo parses a file when it first applies it)."""
    return read_migrations(f"package:{package}:migrations")
