"""Failed logins, per client, pure: backoff and what of them is worth an audit row.

A client's first FREE_FAILURES failed logins cost nothing (a mistyped or stale link); each one after makes it wait
twice as long before its next login is even looked at (1 s, 2 s, 4 s, ... at most MAX_WAIT_S), so guessing
codes goes at a few tries an hour instead of a thousand a second. A client is forgotten FORGET_S after its
last failure, or at once when it logs in. Only a client's first AUDITED_FAILURES failures in that time, and at
most AUDITED_PER_HOUR over all clients, become audit rows: the trail records that someone tried, not every try.
At most MAX_CLIENTS are remembered (the least recent goes first), so a flood of addresses cannot grow memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 3
MAX_WAIT_S = 300.0
FORGET_S = 900.0
AUDITED_FAILURES = 5
AUDITED_PER_HOUR = 100
MAX_CLIENTS = 10_000


@dataclass
class _Client:
    failures: int = 0
    last_failure_s: float = 0.0
    wait_until_s: float = 0.0


@dataclass(frozen=True)
class Failure:
    """What one failed login leads to: how long the client now waits, and whether to write an audit row."""

    failures: int  # in a row, this one included
    wait_s: float
    audited: bool


class LoginThrottle:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._audit_hour = -1
        self._audited_this_hour = 0
        self._lock = threading.Lock()  # request threads share it

    def wait_s(self, client: str) -> float:
        """How long `client` must still wait before a login of its is looked at; 0 when it may try now."""
        with self._lock:
            found = self._live(client)
            return max(0.0, found.wait_until_s - self._clock()) if found else 0.0

    def failed(self, client: str) -> Failure:
        with self._lock:
            return self._failed(client, self._clock())

    def _failed(self, client: str, now: float) -> Failure:
        found = self._live(client) or _Client()
        found.failures += 1
        found.last_failure_s = now
        wait = 0.0 if found.failures <= FREE_FAILURES else min(MAX_WAIT_S, 2.0 ** (found.failures - FREE_FAILURES - 1))
        found.wait_until_s = now + wait
        self._clients[client] = found
        self._clients.move_to_end(client)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)
        return Failure(found.failures, wait, found.failures <= AUDITED_FAILURES and self._audit_allowed(now))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _live(self, client: str) -> _Client | None:
        found = self._clients.get(client)
        if found is not None and self._clock() - found.last_failure_s >= FORGET_S:
            del self._clients[client]
            return None
        return found

    def _audit_allowed(self, now_s: float) -> bool:
        hour = int(now_s // 3600)
        if hour != self._audit_hour:
            self._audit_hour, self._audited_this_hour = hour, 0
        self._audited_this_hour += 1
        return self._audited_this_hour <= AUDITED_PER_HOUR
