"""The inventory, the same on every replica: each keeps it in memory (recommendations, plans and checks of pushed
samples read it there) and stores every change; with PostgreSQL, a change's transaction also says which hosts and
VMs it touched (advisor.adapters.sql.feed), and every other replica, once a second, reads those hosts and VMs
again from the inventory's tables and applies them in memory (advisor.usecases.inventory.Inventory.follow). A
change that does not fit what a replica holds (one it has not read yet touched the same hosts) makes it read the
whole inventory again. A change made on one replica is thus in every other's memory within about two seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from advisor.adapters.sql.feed import Changed
from advisor.domain.model import Host, Vm
from advisor.features.samples import RecentSamples
from advisor.sample_sharing import FEED_KEEP_S, PRUNE_EVERY, FeedCursor
from advisor.usecases.inventory import Inventory


class ChangeFeed(Protocol):
    """advisor.adapters.sql.feed.InventoryFeed."""

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Changed]: ...

    def prune(self, before_s: float) -> int: ...


class StoredInventory(Protocol):
    def load_inventory_of(self, host_ids: Sequence[str], vm_ids: Sequence[str]) -> tuple[list[Host], list[Vm]]: ...


class InventoryFollower:
    """Applies to this replica's `inventory` (and forgets in its `samples`) what the other replicas changed;
    `changed()` runs after each change applied (the inventory's gauges)."""

    def __init__(self, feed: ChangeFeed, stored: StoredInventory, inventory: Inventory, samples: RecentSamples,
                 origin: str, *, changed: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._feed = feed
        self._stored = stored
        self._inventory = inventory
        self._samples = samples
        self._origin = origin
        self._changed = changed
        self._clock = clock
        self._cursor = FeedCursor(monotonic)
        self._ticks = 0

    def follow(self) -> None:
        rows = self._cursor.read(lambda after, also: self._feed.read(self._origin, after, also))
        host_ids = list(dict.fromkeys(i for row in rows for i in row.host_ids))
        vm_ids = list(dict.fromkeys(i for row in rows for i in row.vm_ids))
        if host_ids or vm_ids:
            hosts, vms = self._stored.load_inventory_of(host_ids, vm_ids)
            change = self._inventory.follow(host_ids, vm_ids, hosts, vms)
            self._samples.forget(change.removed_host_ids, change.removed_vm_ids)
            self._changed()
        self._ticks += 1
        if self._ticks % PRUNE_EVERY == 0:
            self._feed.prune(self._clock() - FEED_KEEP_S)
