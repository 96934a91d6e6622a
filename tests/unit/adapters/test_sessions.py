"""The store of codes and sessions: a code is claimed once, and a session lives only while its token does."""

from __future__ import annotations

from pathlib import Path

from advisor.adapters.sql.access import TokenStore
from advisor.adapters.sql.sessions import SessionStore
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.domain.access import Role
from advisor.web import login

NOW = 1_700_000_000.0


def test_a_code_is_claimed_once_and_sessions_end_with_their_token(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "advisor.sqlite3")
    tokens, sessions = TokenStore(database, lambda: NOW), SessionStore(database)
    tokens.create("web", Role.READER)
    token_hash = sessions.active_token_hash("web")
    assert token_hash is not None and sessions.active_token_hash("nobody") is None
    code, stored = login.new_code(token_hash, NOW)
    sessions.add_code(stored)

    claimed = sessions.claim_code(login.digest(code), NOW + 1)
    assert claimed is not None and claimed.token_name == "web" and claimed.token_active
    assert sessions.claim_code(login.digest(code), NOW + 2) is None  # never twice
    assert sessions.claim_code(login.digest("never issued"), NOW) is None

    secret, session = login.new_session(claimed, NOW + 1)
    sessions.add_session(session)
    found = sessions.session(login.digest(secret))
    assert found is not None and login.session_refusal(found, NOW + 2) is None
    assert sessions.session(secret) is None  # stored by its hash only

    tokens.revoke("web")
    revoked = sessions.session(login.digest(secret))
    assert revoked is not None and "revoked" in (login.session_refusal(revoked, NOW + 3) or "")
    tokens.create("web", Role.READER)  # the same name again is another token: the old sessions stay ended
    again = sessions.session(login.digest(secret))
    assert again is not None and not again.token_active
    assert sessions.purge(NOW + 4) == 1 and sessions.session(login.digest(secret)) is None
    database.close()


def test_expired_codes_and_sessions_are_purged_and_a_session_can_end(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "advisor.sqlite3")
    tokens, sessions = TokenStore(database, lambda: NOW), SessionStore(database)
    tokens.create("web", Role.READER)
    token_hash = sessions.active_token_hash("web") or ""
    code, stored = login.new_code(token_hash, NOW)
    sessions.add_code(stored)
    late = sessions.claim_code(login.digest(code), NOW + login.CODE_TTL_S + 1)
    assert "expired" in (login.code_refusal(late, NOW + login.CODE_TTL_S + 1) or "")
    assert late is not None
    secret, session = login.new_session(late, NOW)
    sessions.add_session(session)
    assert sessions.end_session(login.digest(secret)) and not sessions.end_session(login.digest(secret))
    assert sessions.purge(NOW + login.CODE_TTL_S + 1) == 1  # the expired code
    database.close()
