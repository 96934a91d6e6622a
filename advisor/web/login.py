"""The web page's login rules, pure: one-time codes, sessions, bearer secrets, the login URL.

- `advisor ui` stores a one-time code (only its hash) for a token: good once, for CODE_TTL_S. The login URL
  carries it in its fragment (`/login#code=...`), which browsers never send: it stays out of request lines,
  proxies' and servers' logs.
- The login page posts the code; claiming it opens a session: a random secret returned in the answer, only its
  hash stored. The page keeps the secret in `sessionStorage`, which belongs to one origin (scheme, host and
  port) and one tab, and sends it as `Authorization: Bearer SECRET`. No cookie: a cookie belongs to a host
  whatever its port, so a page or server of another port of that host could read or replay it; storage of
  another origin is out of reach. A session lives SESSION_TTL_S and ends at once when its token is revoked; it
  only ever reads.
- The JSON endpoints take `Authorization: Bearer TOKEN` too, a token of the token store, any role.

The code is not a token of the token store: a token works on the gRPC API until revoked, while a login link
ends up in a terminal's scrollback and a browser's history, so it must open nothing but one reader session, once,
within minutes. A table of its own says exactly that (used or not, expiry) without changing the tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets

from advisor.domain.sessions import LoginCode, WebSession

CODE_TTL_S = 600.0  # 10 minutes to open the link
SESSION_TTL_S = 12 * 3600.0  # a working day; then `advisor ui` again
SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 random bits
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a secret. SHA-256 without salt or stretching: the secret has 256 random bits."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_code(token_hash: str, now_s: float) -> tuple[str, LoginCode]:
    """A one-time code for the token with that hash: the code (to show once) and what is stored of it."""
    code = new_secret()
    return code, LoginCode(digest(code), token_hash, now_s, now_s + CODE_TTL_S)


def new_session(code: LoginCode, now_s: float) -> tuple[str, WebSession]:
    """A session opened by a claimed code: its secret (for the page only) and what is stored of it."""
    secret = new_secret()
    return secret, WebSession(digest(secret), code.token_hash, now_s, now_s + SESSION_TTL_S, code.token_name,
                              code.token_active)


def code_refusal(code: LoginCode | None, now_s: float) -> str | None:
    """Why a claimed code opens no session, or None when it opens one. `None` is a code unknown or used before."""
    if code is None:
        return "this login link was used already, or was not issued by this advisor"
    if now_s >= code.expires_at_s:
        return f"this login link expired (links last {CODE_TTL_S / 60:.0f} minutes)"
    if not code.token_active:
        return f"the token of this login link ({code.token_name or 'gone'}) was revoked"
    return None


def session_refusal(session: WebSession | None, now_s: float) -> str | None:
    """Why a session lets nothing through, or None when it is live."""
    if session is None:
        return "you are not logged in"
    if now_s >= session.expires_at_s:
        return f"the session expired (sessions last {SESSION_TTL_S / 3600:.0f} h)"
    if not session.token_active:
        return f"the session's token ({session.token_name or 'gone'}) was revoked"
    return None


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (the scheme in any case); None for anything else."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_secret(text: str) -> bool:
    """Whether a text has the form of a login code or a session's secret (what `new_secret` makes)."""
    return bool(SECRET.fullmatch(text))


def posted_code(body: bytes) -> str:
    """The code of a login's body, `{"code": "..."}`; "" for anything else (then it is no login link)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: brackets nested deeper than the parser goes
        return ""
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else ""


def on_loopback(listen: str) -> bool:
    """Whether a HOST:PORT listens on loopback only (then a session's secret on plain HTTP never leaves the
    machine)."""
    host = listen.rpartition(":")[0]
    return host in LOOPBACK or host.startswith("127.")


def base_url(address: str, scheme: str = "http") -> str:
    """The URL of a server listening on `address` (HOST:PORT, as the advisor publishes it): a wildcard address
    is reached on loopback."""
    host, _, port = address.rpartition(":")
    host = WILDCARDS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def login_url(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/login#code={code}"
