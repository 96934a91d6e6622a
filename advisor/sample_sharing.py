"""Samples pushed to any replica, seen by all: each replica keeps its recent samples in memory (the forecasts and
recommendations read them there), publishes what was added to it to a feed in the shared database, and adds what
the other replicas published, at every `exchange` (a second apart: a sample pushed to one replica is in every
other's memory within about two seconds).

The feed is numbered by the database as rows are written, but a row written just before another may commit just
after it: a reader that has seen row 12 but not row 11 asks for row 11 again at its next exchanges, for a while
(GAP_WAIT_S), before it takes it for a number never used (a rolled-back write). Rows are kept FEED_KEEP_S; a replica
that starts reads them all, after the samples saved in the database (advisor.adapters.sql.samples), so that it
misses none of the last minutes. SQLite's only process has no one to share with, and keeps plain RecentSamples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol, TypeVar

from advisor.adapters.sql.feed import Batch
from advisor.domain.model import HostSample, VmSample
from advisor.features.sample_columns import VmColumns
from advisor.features.samples import RecentSamples

log = logging.getLogger("advisor.sharing")

EXCHANGE_S = 1.0  # how often a replica publishes what it was given and reads what the others were
GAP_WAIT_S = 10.0  # how long a missing row number is asked for again (a write commits within it)
FEED_KEEP_S = 120.0  # how long rows stay in the feed
PRUNE_EVERY = 30  # exchanges between two prunings of the feed
# Samples waiting to be published at most (tens of MB): beyond, as when PostgreSQL stays away, all waiting are dropped.
OUTBOX_MAX = 200_000


class Feed(Protocol):
    """advisor.adapters.sql.feed.SampleFeed."""

    def publish(self, origin: str, written_at_s: float, hosts: Sequence[HostSample],
                vms: Sequence[VmSample]) -> None: ...

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Batch]: ...

    def prune(self, before_s: float) -> int: ...


class Numbered(Protocol):
    @property
    def seq(self) -> int: ...


N = TypeVar("N", bound=Numbered)


class FeedCursor:
    """Where a reader is in a feed whose rows are numbered as written but may commit out of order: the highest
    number read, and the numbers below it not read yet (asked for again until GAP_WAIT_S has passed)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen = 0
        self._gaps: dict[int, float] = {}  # when each missing number was first missed

    def read(self, fetch: Callable[[int, list[int]], list[N]]) -> list[N]:
        """The rows not read yet: `fetch(after, also)` gives those numbered above `after` or in `also`."""
        now = self._monotonic()
        self._gaps = {seq: since for seq, since in self._gaps.items() if now - since < GAP_WAIT_S}
        rows = fetch(self._seen, sorted(self._gaps))
        read = {row.seq for row in rows}
        for seq in read:
            self._gaps.pop(seq, None)
        if read:
            # from the first row read when nothing was read before: the rows before it were pruned
            first = self._seen + 1 if self._seen else min(read)
            self._gaps.update((seq, now) for seq in range(first, max(read)) if seq not in read)
            self._seen = max(self._seen, *read)
        return rows


class SharedSamples(RecentSamples):
    """RecentSamples that publish what is added to them through `feed` as `origin` (this replica), and add what
    other replicas published, at each `exchange()`."""

    def __init__(self, capacity: int, feed: Feed, origin: str, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity)
        self._feed = feed
        self._origin = origin
        self._clock = clock
        self._monotonic = monotonic
        self._outbox_lock = threading.Lock()
        self._outbox: tuple[list[HostSample], list[VmSample]] = ([], [])
        self._cursor = FeedCursor(monotonic)
        self._exchanges = 0

    def add(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        super().add(host_samples, vm_samples)
        self._post(host_samples, vm_samples)

    def add_vm_columns(self, columns: VmColumns) -> None:
        super().add_vm_columns(columns)
        self._post((), columns.samples())

    def _post(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample], *,
              first: bool = False) -> None:
        """Put samples in the outbox: after those waiting, or `first`, before them (a publication that failed)."""
        with self._outbox_lock:
            hosts, vms = self._outbox
            if first:
                self._outbox = hosts, vms = [*host_samples, *hosts], [*vm_samples, *vms]
            else:
                hosts.extend(host_samples)
                vms.extend(vm_samples)
            if len(hosts) + len(vms) > OUTBOX_MAX:
                log.warning("samples not shared with the other replicas: no exchange for too long",
                            extra={"samples": len(hosts) + len(vms)})
                self._outbox = ([], [])

    def exchange(self) -> None:
        """Publish the samples added here since the last exchange, then add those other replicas published. A
        publication that fails is tried again at the next exchange, with what was added since (a retried batch
        that had in fact been written is harmless: a sample added again at a time held replaces itself)."""
        with self._outbox_lock:
            hosts, vms = self._outbox
            self._outbox = ([], [])
        if hosts or vms:
            try:
                self._feed.publish(self._origin, self._clock(), hosts, vms)
            except Exception as error:
                log.warning("samples not shared yet: publication failed, tried again at the next exchange", extra={
                    "error": str(error), "samples": len(hosts) + len(vms)})
                self._post(hosts, vms, first=True)
        self._read()
        self._exchanges += 1
        if self._exchanges % PRUNE_EVERY == 0:
            self._feed.prune(self._clock() - FEED_KEEP_S)

    def _read(self) -> None:
        for batch in self._cursor.read(lambda after, also: self._feed.read(self._origin, after, also)):
            super().add(batch.hosts, batch.vms)  # theirs: not published again
