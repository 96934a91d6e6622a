"""The web page's login rules, pure: one-time codes, sessions, cookies, bearer tokens, the login URL.

- `advisor ui` stores a one-time code (only its hash) for a token: good once, for CODE_TTL_S.
- Opening the login URL claims the code and opens a session: a random secret in a cookie (SessionCookie:
  HttpOnly, SameSite=Strict, Path=/, named after the listener's port; over TLS `__Host-` and Secure, so the
  browser sends it only over TLS, to this host, never set or read by a subdomain or a plain-HTTP page; on plain
  HTTP, which stays on loopback, without them), only its hash stored. A session lives SESSION_TTL_S and ends at
  once when its token is revoked; it only ever reads.
- The JSON endpoints also take `Authorization: Bearer TOKEN`, any role, checked by the token store.

The code is not a token of the token store: a token works on the gRPC API until revoked, while a login link
ends up in a terminal's scrollback and a browser's history, so it must open nothing but one reader session, once,
within minutes. A table of its own says exactly that (used or not, expiry) without changing the tokens.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from advisor.domain.sessions import LoginCode, WebSession

CODE_TTL_S = 600.0  # 10 minutes to open the link
SESSION_TTL_S = 12 * 3600.0  # a working day; then `advisor ui` again
COOKIE = "advisor_session"
SECURE_PREFIX = "__Host-"  # browsers take such a cookie only with Secure, Path=/ and no Domain, from a TLS page
SAME_NAME_READ = 4  # cookies of our name looked at in one request (a shadowing cookie comes first)
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
    """A session opened by a claimed code: the cookie's secret and what is stored of it."""
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


@dataclass(frozen=True)
class SessionCookie:
    """The session cookie of the listener on `port`.

    Its name carries the port (`advisor_session_9464`, over TLS `__Host-advisor_session_9464`): cookies ignore
    ports, so two listeners of one host with one name would overwrite each other's sessions, and any other service
    of the host would write over it by using a common name. A page or server of another port can still set a
    cookie of this name on plain HTTP, even one with a longer Path, which the browser sends first (cookie
    tossing): every well-formed value of our name is read (`secrets`), so such a cookie cannot hide the real one.
    """

    port: int
    tls: bool = False

    @property
    def name(self) -> str:
        return f"{SECURE_PREFIX if self.tls else ''}{COOKIE}_{self.port}"

    def set(self, secret: str, max_age_s: float) -> str:
        secure = "; Secure" if self.tls else ""
        return f"{self.name}={secret}; Path=/; Max-Age={max(0, int(max_age_s))}; HttpOnly; SameSite=Strict{secure}"

    def cleared(self) -> str:
        return self.set("", 0)

    def secrets(self, header: str) -> tuple[str, ...]:
        """The session secrets of a Cookie header under our name, in its order (at most SAME_NAME_READ); what is
        there but is not one of ours (malformed) is left out."""
        found = []
        for part in header.split(";")[:64]:
            name, sep, value = part.strip().partition("=")
            if sep and name == self.name and SECRET.fullmatch(value):
                found.append(value)
        return tuple(found[:SAME_NAME_READ])


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (the scheme in any case); None for anything else."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_code(text: str) -> bool:
    return bool(SECRET.fullmatch(text))


def on_loopback(listen: str) -> bool:
    """Whether a HOST:PORT listens on loopback only (then a cookie on plain HTTP never leaves the machine)."""
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
    return f"{base.rstrip('/')}/login?code={code}"
