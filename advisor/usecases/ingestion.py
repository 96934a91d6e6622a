"""Inventory and samples coming in: pushed (strict: a bad item rejects the whole batch, naming the field) or
pulled by a collector (lenient: what cannot be used is skipped and counted, since nobody is there to fix it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from advisor.domain import validation
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Host, HostSample, VmSample
from advisor.domain.uris import UriPolicy
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock

MAX_HOSTS_PER_PUSH = 10_000
MAX_VMS_PER_PUSH = 100_000
MAX_SAMPLES_PER_PUSH = 50_000


class Ingestion:
    def __init__(self, inventory: Inventory, samples: RecentSamples, metrics: AdvisorMetrics, clock: Clock,
                 uris: UriPolicy) -> None:
        self._inventory = inventory
        self._uris = uris
        self._samples = samples
        self._metrics = metrics
        self._clock = clock
        self.update_gauges()

    def update_gauges(self) -> None:
        hosts, vms = self._inventory.counts()
        self._metrics.inventory.labels("host").set(hosts)
        self._metrics.inventory.labels("vm").set(vms)
        self._metrics.tracked_series_bytes.set(self._samples.nbytes())

    def push_inventory(self, change: InventoryChange) -> None:
        if len(change.hosts) > MAX_HOSTS_PER_PUSH:
            raise InvalidArgument("hosts", f"at most {MAX_HOSTS_PER_PUSH} per push (got {len(change.hosts)})")
        if len(change.vms) > MAX_VMS_PER_PUSH:
            raise InvalidArgument("vms", f"at most {MAX_VMS_PER_PUSH} per push (got {len(change.vms)})")
        for name, ids in (("removed_host_ids", change.removed_host_ids), ("removed_vm_ids", change.removed_vm_ids)):
            if len(ids) > MAX_VMS_PER_PUSH:
                raise InvalidArgument(name, f"at most {MAX_VMS_PER_PUSH} per push (got {len(ids)})")
        for i, host in enumerate(change.hosts):
            validation.check_host(host, f"hosts[{i}]")
            if host.hypervisor_uri and not self._uris.allows(host.hypervisor_uri):
                raise InvalidArgument(f"hosts[{i}].hypervisor_uri", self._uris.explain(host.hypervisor_uri))
        for i, vm in enumerate(change.vms):
            validation.check_vm(vm, f"vms[{i}]")
        for i, ident in enumerate(change.removed_host_ids):
            validation.check_id(ident, f"removed_host_ids[{i}]")
        for i, ident in enumerate(change.removed_vm_ids):
            validation.check_id(ident, f"removed_vm_ids[{i}]")
        self._inventory.apply(change)
        self._samples.forget(change.removed_host_ids, change.removed_vm_ids)
        self.update_gauges()

    def push_samples(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        for name, items in (("host_samples", host_samples), ("vm_samples", vm_samples)):
            if len(items) > MAX_SAMPLES_PER_PUSH:
                raise InvalidArgument(name, f"at most {MAX_SAMPLES_PER_PUSH} per push (got {len(items)})")
        now = self._clock()
        with self._inventory.reading() as cluster:
            seen: dict[tuple[str, float], int] = {}
            for i, hs in enumerate(host_samples):
                field = f"host_samples[{i}]"
                validation.check_host_sample(hs, field, now)
                if hs.host_id not in cluster.hosts:
                    raise NotFound(f"{field}.host_id", "host", hs.host_id)
                if (first := seen.setdefault((hs.host_id, hs.time_s), i)) != i:
                    raise InvalidArgument(field, f"same host and time as host_samples[{first}]")
            seen.clear()
            for i, vs in enumerate(vm_samples):
                field = f"vm_samples[{i}]"
                validation.check_vm_sample(vs, field, now)
                vm = cluster.vms.get(vs.vm_id)
                if vm is None:
                    raise NotFound(f"{field}.vm_id", "VM", vs.vm_id)
                if vs.memory_used_mib is not None and vs.memory_used_mib > vm.memory_mib:
                    raise InvalidArgument(
                        f"{field}.memory_used_mib", f"{vs.memory_used_mib:g} exceeds the VM's {vm.memory_mib} MiB"
                    )
                if (first := seen.setdefault((vs.vm_id, vs.time_s), i)) != i:
                    raise InvalidArgument(field, f"same VM and time as vm_samples[{first}]")
            # Added under the inventory's lock, so that a VM removed meanwhile cannot get samples back.
            self._samples.add(host_samples, vm_samples)
        self._metrics.tracked_series_bytes.set(self._samples.nbytes())
        self._metrics.samples_ingested.labels("host").inc(len(host_samples))
        self._metrics.samples_ingested.labels("vm").inc(len(vm_samples))

    def ingest_pulled(self, host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> dict[str, int]:
        """Samples pulled from a source: those of unknown hosts or VMs, or with values this VM cannot have, are
        skipped and counted (by reason) rather than failing the whole batch."""
        skipped: dict[str, int] = {}
        now = self._clock()

        def skip(reason: str) -> None:
            skipped[reason] = skipped.get(reason, 0) + 1

        with self._inventory.reading() as cluster:
            hosts: dict[tuple[str, float], HostSample] = {}
            for hs in host_samples:
                try:
                    validation.check_host_sample(hs, "sample", now)
                except InvalidArgument:
                    skip("invalid")
                    continue
                if hs.host_id not in cluster.hosts:
                    skip("unknown_host")
                    continue
                hosts[(hs.host_id, hs.time_s)] = hs
            vms: dict[tuple[str, float], VmSample] = {}
            for pulled in vm_samples:
                vm = cluster.vms.get(pulled.vm_id)
                if vm is None:
                    skip("unknown_vm")
                    continue
                vs = pulled
                if vs.memory_used_mib is not None and vs.memory_used_mib > vm.memory_mib:
                    vs = replace(vs, memory_used_mib=float(vm.memory_mib))  # a balloon figure above the size
                if vs.working_set_mib is not None and vs.working_set_mib > vm.memory_mib:
                    vs = replace(vs, working_set_mib=float(vm.memory_mib))
                try:
                    validation.check_vm_sample(vs, "sample", now)
                except InvalidArgument:
                    skip("invalid")
                    continue
                vms[(vs.vm_id, vs.time_s)] = vs
            self.push_samples(list(hosts.values()), list(vms.values()))
        return skipped

    def known_ids(self) -> tuple[list[str], list[str]]:
        with self._inventory.reading() as cluster:
            return list(cluster.hosts), list(cluster.vms)

    def hosts_with_hypervisor(self) -> list[Host]:
        with self._inventory.reading() as cluster:
            return [h for h in cluster.hosts.values() if h.hypervisor_uri]
