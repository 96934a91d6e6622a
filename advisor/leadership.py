"""Which replica leads: the loop that claims the lease every few seconds and steps advisor.domain.lease with what
it found, taking over when elected and stopping everything a leader runs when its lease is lost.

Replicas on one PostgreSQL share one lease (advisor.adapters.sql.lease); SQLite has one process per data
directory, which leads from its start without a lease (no term: its writes are not fenced). The leader runs the
executor, the reconciler, the collectors, automation's periodic work and retention, and takes the operations the
other replicas queued; every replica serves reads, predictions, recommendations, plans and decisions.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from advisor.domain.ids import new_id
from advisor.domain.lease import Act, Lease, Standing, step
from advisor.execution.endings import RESTARTED

log = logging.getLogger("advisor.leadership")

TICKS_PER_TTL = 5  # claims per TTL: a 10 s lease is renewed every 2 s, and survives three failed claims


class LeaseStore(Protocol):
    """The lease in the database (advisor.adapters.sql.lease.LeaseTable)."""

    def claim(self, holder: str, now_s: float, ttl_s: float) -> Lease: ...

    def release(self, holder: str, term: int) -> bool: ...


def replica_name() -> str:
    """This process among the replicas, in logs and in the lease: its host, pid and a few random characters (a
    pid is reused by a restart)."""
    return f"{socket.gethostname()}-{os.getpid()}-{new_id()[:6]}"


class Leadership:
    """Whether this replica leads, kept by claiming `lease` every `ttl_s / TICKS_PER_TTL` seconds (`lease` None:
    the only process, which leads at once, without a term)."""

    def __init__(self, lease: LeaseStore | None, ttl_s: float, *, replica: str = "",
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.replica = replica or replica_name()
        self._lease = lease
        self._ttl_s = ttl_s
        self._clock = clock
        self._monotonic = monotonic
        self._standing = Standing()
        self._led_in: int | None = None  # the term of this life's tenure, kept once it ended
        self._acting = False  # leads and has taken over: executions run here
        self._holder = ""  # who leads, as the last claim found
        self._on_elected: Callable[[], None] = lambda: None
        self._on_deposed: Callable[[], None] = lambda: None
        self._lock = threading.Lock()  # one step at a time: the claims' and the watchdog's
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name="leadership", daemon=True),
                         threading.Thread(target=self._watch, name="leadership-watchdog", daemon=True)]
        self.deposed = threading.Event()  # this life's leadership ended: the process is to stop

    @property
    def term(self) -> int | None:
        """The fencing term every write of an execution here carries: the term this replica leads in, and still
        that term once its leadership ended, so that whatever its executor writes after that is refused; None
        while it never led, and for SQLite's only process."""
        return self._led_in

    def acting(self) -> bool:
        """Whether executions run here now: elected, and taken over."""
        return self._acting

    def leader(self) -> str:
        return self.replica if self._acting else self._holder

    def takeover(self) -> str:
        """Why this replica follows the migrations it finds under way when it takes over, on their timelines:
        which replica took over in which term (SQLite's only process: the advisor restarted)."""
        return RESTARTED if self.term is None else f"replica {self.replica} took over as leader (term {self.term})"

    def start(self, on_elected: Callable[[], None], on_deposed: Callable[[], None]) -> None:
        """Claim the lease now (a free lease is taken before the first call is served), then every few seconds.
        `on_elected()` takes over (it runs in the claiming thread); `on_deposed()` stops all a leader runs."""
        self._on_elected, self._on_deposed = on_elected, on_deposed
        if self._lease is None:
            self._take_over()
            return
        self._tick()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop claiming; a leader lets its lease go, so another replica need not wait for it to expire."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(self._ttl_s)  # a claim hung on a cut connection is left to its daemon thread
        term = self._standing.term
        if self._lease is not None and term is not None and not self.deposed.is_set():
            try:
                self._lease.release(self.replica, term)
                log.info("lease released", extra={"replica": self.replica, "term": term})
            except Exception as error:  # it expires on its own
                log.warning("lease not released", extra={"replica": self.replica, "error": str(error)})

    def _loop(self) -> None:
        while not self._stop.wait(self._ttl_s / TICKS_PER_TTL) and not self.deposed.is_set():
            self._tick()

    def _watch(self) -> None:
        """Step down on time even while a claim hangs (a connection that waits for a cut-off server): the claims'
        thread cannot be relied on to come back before the lease expires."""
        while not self._stop.wait(self._ttl_s / TICKS_PER_TTL / 2) and not self.deposed.is_set():
            self._advance(None, self._monotonic())

    def _tick(self) -> None:
        assert self._lease is not None
        began = self._monotonic()
        found: Lease | None
        try:
            found = self._lease.claim(self.replica, self._clock(), self._ttl_s)
        except Exception as error:  # the database is unreachable: the step decides how long a leader goes on
            log.warning("lease claim failed", extra={"replica": self.replica, "error": str(error)})
            found = None
        if found is not None:
            self._holder = found.holder
        self._advance(found, began)

    def _advance(self, found: Lease | None, began: float) -> None:
        with self._lock:
            if self.deposed.is_set():  # a claim that comes back after the watchdog stepped down changes nothing
                return
            self._standing, act = step(self._standing, found, self.replica, began, self._monotonic(), self._ttl_s)
            if act is Act.LEAD:
                self._led_in = self._standing.term
                self._take_over()
            elif act is Act.STEP_DOWN:
                self._step_down(found)

    def _take_over(self) -> None:
        log.info("elected leader: taking over", extra={"replica": self.replica, "term": self.term})
        self._on_elected()
        self._acting = True

    def _step_down(self, found: Lease | None) -> None:
        self._acting = False
        log.error("leadership lost: stopping the executor and the leader's tasks; this process stops, to start "
                  "again as a follower", extra={"replica": self.replica, "leader": found.holder if found else "",
                                                 "term": found.term if found else None})
        self._on_deposed()
        self.deposed.set()
        log.info("stopped acting as leader: the executor and the leader's tasks are stopped", extra={
            "replica": self.replica, "term": self._led_in})
