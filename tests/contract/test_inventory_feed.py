"""The inventory's feed between replicas (advisor.adapters.sql.feed, advisor.inventory_sharing) on SQLite and on a
real PostgreSQL server, each database opened twice as two replicas open it: a change stored by one replica names
what it touched, and the other applies it to its own inventory in memory (removals too, forgetting their samples);
a change that does not fit what a replica holds makes it read the whole inventory again."""

from __future__ import annotations

from advisor.adapters.sql.feed import InventoryFeed
from advisor.adapters.sql.store import SqlStore
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Host, Vm, VmSample
from advisor.features.samples import RecentSamples
from advisor.inventory_sharing import InventoryFollower
from advisor.usecases.inventory import Inventory
from tests.contract.test_databases import Open, open_database  # noqa: F401 - the fixture

H1, H2 = Host("h1", 32, 65536), Host("h2", 32, 65536)


class Replica:
    def __init__(self, open_database: Open, name: str) -> None:  # noqa: F811
        database = open_database()
        self.store = SqlStore(database, replica=name)
        self.inventory = Inventory(self.store)
        self.samples = RecentSamples(8)
        self.follower = InventoryFollower(InventoryFeed(database), self.store, self.inventory, self.samples, name)

    def vms(self) -> dict[str, str]:
        return {v.id: v.host_id for v in self.inventory.vms().values()}


def test_what_one_replica_changes_is_in_the_others_memory_after_it_follows(open_database: Open) -> None:  # noqa: F811
    first, second = Replica(open_database, "first"), Replica(open_database, "second")
    first.inventory.apply(InventoryChange(hosts=(H1, H2), vms=(Vm("v1", "h1", 1024, 1), Vm("v2", "h1", 1024, 1))))
    assert second.inventory.counts() == (0, 0)
    version = second.inventory.version
    second.follower.follow()
    assert set(second.inventory.hosts()) == {"h1", "h2"} and second.vms() == {"v1": "h1", "v2": "h1"}
    assert second.inventory.changes_since(version) is not None  # followed by change: snapshots read only it
    second.samples.add([], [VmSample("v2", 1.0, dirty_rate_mib_s=3.0)])
    # a move recorded on the first, and a VM removed there
    first.inventory.apply(InventoryChange(vms=(Vm("v1", "h2", 1024, 1),), removed_vm_ids=("v2",)))
    second.follower.follow()
    assert second.vms() == {"v1": "h2"} and second.samples.vm_latest("v2", "dirty_rate_mib_s") is None
    first.follower.follow()  # its own changes: nothing to do
    assert first.vms() == {"v1": "h2"}


def test_a_change_that_does_not_fit_makes_a_replica_read_the_whole_inventory(open_database: Open) -> None:  # noqa: F811
    first, second = Replica(open_database, "first"), Replica(open_database, "second")
    first.inventory.apply(InventoryChange(hosts=(H1,)))
    first.inventory.apply(InventoryChange(vms=(Vm("v1", "h1", 1024, 1),)))
    # the second sees the VM's row but not the host's (as when the host's change is not committed yet)
    second_feed = InventoryFeed(second.store.database)
    (host_row, vm_row) = second_feed.read("second", 0)
    hosts, vms = second.store.load_inventory_of([], vm_row.vm_ids)
    version = second.inventory.version
    second.inventory.follow([], vm_row.vm_ids, hosts, vms)
    assert second.vms() == {"v1": "h1"} and set(second.inventory.hosts()) == {"h1"}  # all read again
    assert second.inventory.changes_since(version) is None  # snapshots read it whole
    assert host_row.host_ids == ["h1"]
