"""What comes in, checked as a whole against the inventory: an inventory change or a batch of samples pushed by a
client (strict: the first bad item rejects the batch, naming its field), and samples pulled by a collector
(lenient: what cannot be used is skipped and counted by reason, since nobody is there to fix it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from advisor.domain import validation
from advisor.domain.cluster import Cluster, InventoryChange
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.domain.uris import UriPolicy

MAX_HOSTS_PER_PUSH = 10_000
MAX_VMS_PER_PUSH = 100_000
MAX_SAMPLES_PER_PUSH = 50_000
CHECKED_BETWEEN_PAUSES = 500  # samples checked between two calls of `check_samples`' pause (about 0.7 ms)


def _at_most(items: Sequence[object], limit: int, field: str) -> None:
    if len(items) > limit:
        raise InvalidArgument(field, f"at most {limit} per push (got {len(items)})")


def check_change(change: InventoryChange, uris: UriPolicy) -> None:
    """Every item of a pushed change on its own (the cluster checks how they fit together: Cluster.check)."""
    _at_most(change.hosts, MAX_HOSTS_PER_PUSH, "hosts")
    _at_most(change.vms, MAX_VMS_PER_PUSH, "vms")
    _at_most(change.removed_host_ids, MAX_VMS_PER_PUSH, "removed_host_ids")
    _at_most(change.removed_vm_ids, MAX_VMS_PER_PUSH, "removed_vm_ids")
    for i, host in enumerate(change.hosts):
        validation.check_host(host, f"hosts[{i}]")
        if host.hypervisor_uri and not uris.allows(host.hypervisor_uri):
            raise InvalidArgument(f"hosts[{i}].hypervisor_uri", uris.explain(host.hypervisor_uri))
    for i, vm in enumerate(change.vms):
        validation.check_vm(vm, f"vms[{i}]")
    for i, ident in enumerate(change.removed_host_ids):
        validation.check_id(ident, f"removed_host_ids[{i}]")
    for i, ident in enumerate(change.removed_vm_ids):
        validation.check_id(ident, f"removed_vm_ids[{i}]")


def sampled(host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample],
            cluster: Cluster) -> tuple[dict[str, Host], dict[str, Vm]]:
    """The hosts and VMs of a batch that the inventory has: all `check_samples` needs of it, looked up while the
    inventory's lock is held (a dictionary look-up per sample); the checks themselves run without it."""
    hosts = {hs.host_id: host for hs in host_samples if (host := cluster.hosts.get(hs.host_id)) is not None}
    vms = {vs.vm_id: vm for vs in vm_samples if (vm := cluster.vms.get(vs.vm_id)) is not None}
    return hosts, vms


def check_samples(host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample],
                  known: tuple[Mapping[str, Host], Mapping[str, Vm]], now_s: float,
                  pause: Callable[[], None] = lambda: None) -> None:
    """A pushed batch: every sample valid, of a host or VM of the inventory (`known`: its hosts and VMs that the
    inventory has, as `sampled` gives them), at most one per entity and time. `pause()` is called every
    CHECKED_BETWEEN_PAUSES samples (a server's bulk work gives way to urgent calls there: 5,000 samples are 7 ms)."""
    known_hosts, known_vms = known
    _at_most(host_samples, MAX_SAMPLES_PER_PUSH, "host_samples")
    _at_most(vm_samples, MAX_SAMPLES_PER_PUSH, "vm_samples")
    seen: dict[tuple[str, float], int] = {}
    # (a field's name is spelled out only for an error: thousands of samples come in a push)
    for i, hs in enumerate(host_samples):
        if i % CHECKED_BETWEEN_PAUSES == 0:
            pause()
        if not validation.host_sample_fine(hs, now_s):
            validation.check_host_sample(hs, f"host_samples[{i}]", now_s)
        host = known_hosts.get(hs.host_id)
        if host is None:
            raise NotFound(f"host_samples[{i}].host_id", "host", hs.host_id)
        if hs.memory_used_mib is not None and hs.memory_used_mib > host.memory_mib:
            raise InvalidArgument(f"host_samples[{i}].memory_used_mib",
                                  f"{hs.memory_used_mib:g} exceeds the host's {host.memory_mib} MiB")
        if (first := seen.setdefault((hs.host_id, hs.time_s), i)) != i:
            raise InvalidArgument(f"host_samples[{i}]", f"same host and time as host_samples[{first}]")
    seen.clear()
    for i, vs in enumerate(vm_samples):
        if i % CHECKED_BETWEEN_PAUSES == 0:
            pause()
        if not validation.vm_sample_fine(vs, now_s):
            validation.check_vm_sample(vs, f"vm_samples[{i}]", now_s)
        vm = known_vms.get(vs.vm_id)
        if vm is None:
            raise NotFound(f"vm_samples[{i}].vm_id", "VM", vs.vm_id)
        if vs.memory_used_mib is not None and vs.memory_used_mib > vm.memory_mib:
            raise InvalidArgument(f"vm_samples[{i}].memory_used_mib",
                                  f"{vs.memory_used_mib:g} exceeds the VM's {vm.memory_mib} MiB")
        if vs.working_set_mib is not None and vs.working_set_mib > vm.memory_mib:
            raise InvalidArgument(f"vm_samples[{i}].working_set_mib",
                                  f"{vs.working_set_mib:g} exceeds the VM's {vm.memory_mib} MiB")
        if (first := seen.setdefault((vs.vm_id, vs.time_s), i)) != i:
            raise InvalidArgument(f"vm_samples[{i}]", f"same VM and time as vm_samples[{first}]")


def usable_pulled(host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample], cluster: Cluster,
                  now_s: float) -> tuple[list[HostSample], list[VmSample], dict[str, int]]:
    """The pulled samples that can be used (the last of each entity and time), and how many were skipped by
    reason: `invalid`, `unknown_host`, `unknown_vm`. A memory figure above the VM's size (a balloon's) is taken as
    its size."""
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    hosts: dict[tuple[str, float], HostSample] = {}
    for pulled_host in host_samples:
        hs = pulled_host
        try:
            validation.check_host_sample(hs, "sample", now_s)
        except InvalidArgument:
            skip("invalid")
            continue
        host = cluster.hosts.get(hs.host_id)
        if host is None:
            skip("unknown_host")
            continue
        if hs.memory_used_mib is not None and hs.memory_used_mib > host.memory_mib:
            hs = replace(hs, memory_used_mib=float(host.memory_mib))
        hosts[(hs.host_id, hs.time_s)] = hs
    vms: dict[tuple[str, float], VmSample] = {}
    for pulled in vm_samples:
        vm = cluster.vms.get(pulled.vm_id)
        if vm is None:
            skip("unknown_vm")
            continue
        vs = pulled
        if vs.memory_used_mib is not None and vs.memory_used_mib > vm.memory_mib:
            vs = replace(vs, memory_used_mib=float(vm.memory_mib))
        if vs.working_set_mib is not None and vs.working_set_mib > vm.memory_mib:
            vs = replace(vs, working_set_mib=float(vm.memory_mib))
        try:
            validation.check_vm_sample(vs, "sample", now_s)
        except InvalidArgument:
            skip("invalid")
            continue
        vms[(vs.vm_id, vs.time_s)] = vs
    return list(hosts.values()), list(vms.values()), skipped
