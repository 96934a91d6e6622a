"""The web page's one-time login codes and sessions, as stored: only hashes (of a code, of a session's secret),
each naming the token it acts for by that token's hash. The rules (lifetimes, what a refusal says) are
advisor.web.login's; `Sessions` is what they ask of storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LoginCode:
    digest: str  # SHA-256 of the code
    token_hash: str
    created_at_s: float
    expires_at_s: float
    used_at_s: float | None = None
    token_name: str = ""  # as read back: empty when the token no longer exists
    token_active: bool = False


@dataclass(frozen=True)
class WebSession:
    digest: str  # SHA-256 of the session's secret (the page sends it as a bearer header)
    token_hash: str
    created_at_s: float
    expires_at_s: float
    token_name: str = ""
    token_active: bool = False


class Sessions(Protocol):
    """Codes and sessions, read back with their token's name and whether it is still active."""

    def active_token_hash(self, name: str) -> str | None:
        """The hash of the active token named `name`, if there is one."""

    def add_code(self, code: LoginCode) -> None: ...

    def claim_code(self, digest: str, now_s: float) -> LoginCode | None:
        """The code, now marked used; None when it is unknown or was claimed before. A code is claimed at most
        once, also by requests racing with it."""

    def add_session(self, session: WebSession) -> None: ...

    def session(self, digest: str) -> WebSession | None: ...

    def end_session(self, digest: str) -> bool: ...

    def purge(self, now_s: float) -> int:
        """Forget expired codes and sessions, and the sessions of tokens no longer active; how many went."""
