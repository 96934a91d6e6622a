"""The web page's one-time login codes and sessions, in the advisor's database.

Only hashes are kept (of a code, of a session's secret), as for tokens. Each code and session names the token it
acts for by that token's hash, and every read joins the `tokens` table: a revoked token (or one made again under
the same name, which is another token) ends its sessions at once, from any process. The rules (lifetimes, what a
refusal says) are advisor.web.login's; this module stores and answers (advisor.domain.sessions.Sessions), with one
guarantee of its own: a code is claimed at most once (compare-and-set on `used_at_s`), so two requests racing with
one code open one session.
"""

from __future__ import annotations

from advisor.adapters.sql.database import Database
from advisor.domain.sessions import LoginCode, WebSession

# The token a code or session acts for: its name, and whether it is still active (not revoked, not replaced).
_TOKEN = "LEFT JOIN tokens t ON t.hash = x.token_hash"
_ACTIVE = "(t.hash IS NOT NULL AND t.revoked_at_s IS NULL)"


class SessionStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def active_token_hash(self, name: str) -> str | None:
        """The hash of the active token named `name`, if there is one."""
        with self._db.reading() as db:
            row = db.execute("SELECT hash FROM tokens WHERE name = ? AND revoked_at_s IS NULL", (name,)).fetchone()
        return None if row is None else str(row[0])

    def add_code(self, code: LoginCode) -> None:
        with self._db.transaction() as db:
            db.execute("INSERT INTO web_login_codes (hash, token_hash, created_at_s, expires_at_s) VALUES (?, ?, ?, ?)",
                       (code.digest, code.token_hash, code.created_at_s, code.expires_at_s))

    def claim_code(self, digest: str, now_s: float) -> LoginCode | None:
        """The code, now marked used; None when it is unknown or was claimed before (it opens nothing then)."""
        with self._db.transaction() as db:
            claimed = db.execute("UPDATE web_login_codes SET used_at_s = ? WHERE hash = ? AND used_at_s IS NULL",
                                 (now_s, digest)).rowcount == 1
            if not claimed:
                return None
            row = db.execute(f"SELECT x.token_hash, x.created_at_s, x.expires_at_s, x.used_at_s, t.name, {_ACTIVE} "
                             f"FROM web_login_codes x {_TOKEN} WHERE x.hash = ?", (digest,)).fetchone()
        token_hash, created, expires, used, name, active = row
        return LoginCode(digest, token_hash, created, expires, used, name or "", bool(active))

    def add_session(self, session: WebSession) -> None:
        with self._db.transaction() as db:
            db.execute("INSERT INTO web_sessions (hash, token_hash, created_at_s, expires_at_s) VALUES (?, ?, ?, ?)",
                       (session.digest, session.token_hash, session.created_at_s, session.expires_at_s))

    def session(self, digest: str) -> WebSession | None:
        with self._db.reading() as db:
            row = db.execute(f"SELECT x.token_hash, x.created_at_s, x.expires_at_s, t.name, {_ACTIVE} "
                             f"FROM web_sessions x {_TOKEN} WHERE x.hash = ?", (digest,)).fetchone()
        if row is None:
            return None
        token_hash, created, expires, name, active = row
        return WebSession(digest, token_hash, created, expires, name or "", bool(active))

    def end_session(self, digest: str) -> bool:
        with self._db.transaction() as db:
            return bool(db.execute("DELETE FROM web_sessions WHERE hash = ?", (digest,)).rowcount)

    def purge(self, now_s: float) -> int:
        """Forget expired codes and sessions, and the sessions of tokens no longer active; how many went."""
        active = "SELECT hash FROM tokens WHERE revoked_at_s IS NULL"
        with self._db.transaction() as db:
            codes = db.execute("DELETE FROM web_login_codes WHERE expires_at_s < ?", (now_s,)).rowcount
            sessions = db.execute(f"DELETE FROM web_sessions WHERE expires_at_s < ? OR token_hash NOT IN ({active})",
                                  (now_s,)).rowcount
        return int(codes) + int(sessions)
