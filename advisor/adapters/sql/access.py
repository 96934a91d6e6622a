"""Bearer tokens and the audit trail, in the advisor's database.

A token is `adv_` followed by 43 URL-safe characters (256 random bits); only its SHA-256 is stored (a slow hash
adds nothing for a secret of that entropy). The server checks a token on every call against an in-memory copy
of the table, reloaded whenever another connection (the `advisor tokens` command, another replica) has changed the
database, so a revocation takes effect on the next call. The check reads on the database's `checking` connection,
so it never waits behind the stores' work on their shared one (a batch of samples saved, a recommendation stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
from collections.abc import Callable

from advisor.adapters.sql.database import Database
from advisor.domain.access import AuditEntry, Caller, Role, TokenError, TokenInfo

TOKEN_PREFIX = "adv_"
TOKEN_PATTERN = re.compile(r"adv_[A-Za-z0-9_-]{43}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        self._db = database
        self._clock = clock
        self._cache_lock = threading.Lock()
        self._cache: dict[str, Caller] = {}
        self._cache_version: object | None = None

    def create(self, name: str, role: Role) -> str:
        """A new token for `name`; the token itself is returned once and never stored."""
        if not NAME_PATTERN.fullmatch(name):
            raise TokenError(f"a token name is 1-64 characters from [A-Za-z0-9._@-] (got {name[:40]!r})")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._db.transaction() as db:
                # A revoked token's name may be given again; an active one's may not.
                db.execute("DELETE FROM tokens WHERE name = ? AND revoked_at_s IS NOT NULL", (name,))
                db.execute("INSERT INTO tokens (name, role, hash, created_at_s) VALUES (?, ?, ?, ?)",
                           (name, role.label, token_hash(token), self._clock()))
        except self._db.integrity_error:
            raise TokenError(f"a token named {name!r} exists already (revoke it, or choose another name)") from None
        self._invalidate()
        return token

    def renew(self, name: str, role: Role) -> str:
        """A fresh token for `name`, revoking the one it had (for programs that mint their own, like the demo)."""
        with contextlib.suppress(TokenError):
            self.revoke(name)
        return self.create(name, role)

    def revoke(self, name: str) -> None:
        with self._db.transaction() as db:
            revoked = db.execute("UPDATE tokens SET revoked_at_s = ? WHERE name = ? AND revoked_at_s IS NULL",
                                 (self._clock(), name)).rowcount
        if revoked != 1:
            raise TokenError(f"no active token named {name[:64]!r}")
        self._invalidate()

    def list(self) -> list[TokenInfo]:
        with self._db.reading() as db:
            rows = db.execute("SELECT name, role, created_at_s, revoked_at_s FROM tokens ORDER BY name").fetchall()
        return [TokenInfo(name, Role.parse(role), created, revoked) for name, role, created, revoked in rows]

    def authenticate(self, token: str) -> Caller | None:
        """The caller a token stands for; None for a malformed, unknown or revoked token."""
        if not TOKEN_PATTERN.fullmatch(token):
            return None
        # Looked up by its SHA-256: whatever timing a dictionary lookup shows is about the digest, which says
        # nothing about the token, so no constant-time comparison is needed.
        return self._callers().get(token_hash(token))

    def _invalidate(self) -> None:
        with self._cache_lock:
            self._cache_version = None

    def _callers(self) -> dict[str, Caller]:
        with self._db.checking() as db:
            # The version changes when another connection commits (the CLI created or revoked a token, or the
            # server's own stores wrote); without one (PostgreSQL), the few active tokens are read on every call.
            version = self._db.data_version(db)
            with self._cache_lock:
                if version is not None and version == self._cache_version:
                    return self._cache
            rows = db.execute("SELECT name, role, hash FROM tokens WHERE revoked_at_s IS NULL").fetchall()
        callers = {digest: Caller(name, Role.parse(role), "token") for name, role, digest in rows}
        with self._cache_lock:
            self._cache, self._cache_version = callers, version
        return callers


def _storable(text: str) -> str:
    """`text` with NUL written out: what a refused call names comes from the client, and PostgreSQL's text cannot
    hold a NUL (the entry would be lost)."""
    return text.replace("\x00", "\\x00")


class AuditLog:
    """Appends entries; `prune` is the only way one ever leaves (by age)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def append(self, entry: AuditEntry) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO audit (at_s, actor, role, peer, call, target, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.at_s, *map(_storable, (entry.actor, entry.role, entry.peer, entry.call, entry.target[:256],
                                              entry.outcome, entry.detail[:1024]))),
            )

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        with self._db.reading() as db:
            rows = db.execute("SELECT at_s, actor, role, peer, call, target, outcome, detail FROM audit "
                              "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [AuditEntry(*row) for row in rows]

    def prune(self, older_than_s: float) -> int:
        with self._db.transaction() as db:
            return int(db.execute("DELETE FROM audit WHERE at_s < ?", (older_than_s,)).rowcount)
