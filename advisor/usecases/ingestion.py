"""Inventory and samples coming in: pushed (strict: a bad item rejects the whole batch, naming the field) or
pulled by a collector (lenient: what cannot be used is skipped and counted, since nobody is there to fix it). The
checks are pure functions of the domain (advisor.domain.pushes); this module applies what passes them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from advisor.domain import cells, pushes
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Host, HostSample, VmSample
from advisor.domain.uris import UriPolicy
from advisor.features.sample_columns import VmColumns
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock
from advisor.usecases.priority import URGENT, Priority


class Ingestion:
    def __init__(self, inventory: Inventory, samples: RecentSamples, metrics: AdvisorMetrics, clock: Clock,
                 uris: UriPolicy, *, clusters: frozenset[str] = frozenset(), cluster_label: str = "",
                 priority: Priority = URGENT) -> None:
        self._inventory = inventory
        self._cell = clusters, cluster_label  # the clusters this replica group serves (empty: all)
        self._uris = uris
        self._samples = samples
        self._metrics = metrics
        self._clock = clock
        self._priority = priority
        self.update_gauges()

    def update_gauges(self) -> None:
        hosts, vms = self._inventory.counts()
        self._metrics.inventory.labels("host").set(hosts)
        self._metrics.inventory.labels("vm").set(vms)
        self._metrics.tracked_series_bytes.set(self._samples.nbytes())

    def push_inventory(self, change: InventoryChange) -> None:
        pushes.check_change(change, self._uris)
        cells.check_change(change, *self._cell)
        self._inventory.apply(change)
        self._samples.forget(change.removed_host_ids, change.removed_vm_ids)
        self.update_gauges()

    def push_samples(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample] | VmColumns) -> None:
        if isinstance(vm_samples, VmColumns):
            self._push_columns(host_samples, vm_samples)
        else:
            self._push_samples(host_samples, vm_samples, give_way=True)

    def _push_columns(self, host_samples: Sequence[HostSample], columns: VmColumns) -> None:
        """`_push_samples` of VM samples as columns: checked and stored as arrays, a piece at a time, each after
        any urgent call in flight. A batch the array checks refuse is checked again sample by sample, which names
        the first at fault, as for any push."""
        self._priority.give_way()
        now = self._clock()
        with self._inventory.reading() as cluster:
            known_hosts, _ = pushes.sampled(host_samples, (), cluster)
            vms = list(map(cluster.vms.get, columns.ids))
            version = self._inventory.version
        try:
            pushes.check_samples(host_samples, (), (known_hosts, {}), now, self._priority.give_way)
            fine = columns.fine(vms, now)
        except (InvalidArgument, NotFound):
            fine = False
        if not fine:  # raises, naming the first fault (else the array checks were stricter: stored below)
            known_vms = {vm_id: vm for vm_id, vm in zip(columns.ids, vms, strict=True) if vm is not None}
            pushes.check_samples(host_samples, columns.samples(), (known_hosts, known_vms), now,
                                 self._priority.give_way)
        self._store_in_pieces(host_samples, ())
        ordered = columns.take(self._samples.vm_store_order(columns.ids))
        self._priority.in_pieces(ordered, self._samples.add_vm_columns)
        self._forget_gone(known_hosts, columns.ids, version)
        self._count(len(host_samples), len(columns))

    def _push_samples(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample], *,
                      give_way: bool) -> None:
        """Check and store samples; with `give_way` (no lock held), a piece at a time, each after any urgent call
        in flight."""
        if give_way:
            self._priority.give_way()
        now = self._clock()
        # The inventory's lock is held for look-ups only: a recommendation waiting for it never waits behind a
        # batch's checks and storing (tens of ms for thousands of samples).
        with self._inventory.reading() as cluster:
            known = pushes.sampled(host_samples, vm_samples, cluster)
            version = self._inventory.version
        pushes.check_samples(host_samples, vm_samples, known, now,
                             self._priority.give_way if give_way else lambda: None)
        if give_way:
            self._store_in_pieces(host_samples, vm_samples)
        else:
            self._samples.add(host_samples, vm_samples)
        self._forget_gone(known[0], known[1], version)
        self._count(len(host_samples), len(vm_samples))

    def _forget_gone(self, host_ids: Iterable[str], vm_ids: Iterable[str], version: int) -> None:
        """A host or VM removed since the inventory's `version` may have had its samples forgotten before these
        came in: forget them again, so that it does not get samples back (its removal forgets after it is
        applied, so one of the two forgets comes last)."""
        with self._inventory.reading() as cluster:
            if self._inventory.version == version:  # nothing changed: none gone
                return
            gone_hosts = set(host_ids).difference(cluster.hosts)
            gone_vms = set(vm_ids).difference(cluster.vms)
        if gone_hosts or gone_vms:
            self._samples.forget(gone_hosts, gone_vms)

    def _count(self, host_samples: int, vm_samples: int) -> None:
        self._metrics.tracked_series_bytes.set(self._samples.nbytes())
        self._metrics.samples_ingested.labels("host").inc(host_samples)
        self._metrics.samples_ingested.labels("vm").inc(vm_samples)

    def _store_in_pieces(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        host_samples, vm_samples = self._samples.in_store_order(host_samples, vm_samples)
        self._priority.in_pieces(host_samples, lambda piece: self._samples.add(piece, ()))
        self._priority.in_pieces(vm_samples, lambda piece: self._samples.add((), piece))

    def ingest_pulled(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> dict[str, int]:
        """Samples pulled from a source: those of unknown hosts or VMs, or with values this VM cannot have, are
        skipped and counted (by reason) rather than failing the whole batch."""
        with self._inventory.reading() as cluster:
            hosts, vms, skipped = pushes.usable_pulled(host_samples, vm_samples, cluster, self._clock())
            # under the same hold: nothing usable here is removed meanwhile (and never giving way while holding it)
            self._push_samples(hosts, vms, give_way=False)
        return skipped

    def known_ids(self) -> tuple[list[str], list[str]]:
        with self._inventory.reading() as cluster:
            return list(cluster.hosts), list(cluster.vms)

    def local_disks(self) -> dict[str, frozenset[str]]:
        """The device names of each VM's local disks (those a move copies), for VMs that have any."""
        with self._inventory.reading() as cluster:
            return {v.id: frozenset(d.target for d in v.local_disks) for v in cluster.vms.values() if v.local_disks}

    def hosts_with_hypervisor(self) -> list[Host]:
        with self._inventory.reading() as cluster:
            return [h for h in cluster.hosts.values() if h.hypervisor_uri]
