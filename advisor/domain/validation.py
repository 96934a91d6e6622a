"""Checks that a value from outside is sane, naming the offending field. Pure: `now_s` is passed in.

"Absurd" bounds are far beyond any real machine, so they only catch unit mistakes and garbage.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from advisor.domain.automation import Level, check_vm_label
from advisor.domain.errors import InvalidArgument
from advisor.domain.evacuation import check_evacuation_labels
from advisor.domain.model import Disk, Host, HostSample, Objective, Vm, VmSample
from advisor.domain.recommendation import Decision

ID_PATTERN = re.compile(r"[A-Za-z0-9._:@/-]{1,128}")
MAX_LABELS = 64
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 256
MAX_GROUPS = 32
# A host may trunk every VLAN (4094) besides its bridges and pools; a VM has a few interfaces.
MAX_HOST_NETWORKS = 8192
MAX_VM_NETWORKS = 64
MAX_VM_DISKS = 64
MAX_DISK_MIB = 1 << 30  # 1 PiB
MAX_HOST_DISK_MIB = 1 << 34  # 16 PiB of local storage
MAX_DISK_WRITE_RATE_MIB_S = 100_000.0  # beyond any device
# libvirt's target device names: vda, sdb, hdc, xvdaa, nvme0n1, fda.
DISK_TARGET_PATTERN = re.compile(r"[a-z][a-z0-9]{0,31}")
MAX_TEXT = 256

MAX_HOST_CORES = 4096
MAX_HOST_MEMORY_MIB = 64 << 20  # 64 TiB
MAX_VM_VCPUS = 1024
MAX_VM_MEMORY_MIB = 24 << 20  # 24 TiB
# QEMU's own memory beside a guest's (its code, device state, TCG's translated code): a resident figure above the
# guest's memory by more than this is not of that guest.
MAX_QEMU_OWN_MIB = 64 << 10  # 64 GiB
MAX_RESIDENT_MEMORY_MIB = MAX_VM_MEMORY_MIB + MAX_QEMU_OWN_MIB  # what a guest's QEMU process may hold resident
MAX_BANDWIDTH_MIB_S = 200_000.0  # beyond 1.6 Tbit/s
# Below 1 MiB/s (8 Mbit/s) no live migration of a real guest ends: such a figure is a unit mistake.
MIN_BANDWIDTH_MIB_S = 1.0
MAX_POWER_W = 100_000.0
MAX_LOAD_PER_CPU = 1000.0  # runnable threads per CPU: beyond it, a unit mistake (the load not divided by CPUs)
MAX_DIRTY_RATE_MIB_S = 200_000.0
MAX_DOWNTIME_MS = 3_600_000.0  # an hour: beyond it, no pause is a limit
MIN_DOWNTIME_MS = 1.0  # QEMU's downtime limit is whole milliseconds, at least 1
MAX_DEADLINE_MS = 86_400_000.0  # a day
EARLIEST_SAMPLE_S = 946_684_800.0  # 2000-01-01
MAX_FUTURE_SKEW_S = 600.0


def shown(value: str, limit: int = 40) -> str:
    """A value from outside as an error message may quote it: at most `limit` characters, escaped."""
    text = repr(value[:limit])
    return text + (f" ... ({len(value)} characters)" if len(value) > limit else "")


def check_id(value: str, field: str) -> None:
    if not ID_PATTERN.fullmatch(value):
        problem = "is required" if not value else "must be 1-128 characters from [A-Za-z0-9._:@/-]"
        raise InvalidArgument(field, f"{problem} (got {shown(value)})")


def check_number(value: float, field: str, *, low: float, high: float, low_inclusive: bool = True) -> None:
    if not math.isfinite(value):
        raise InvalidArgument(field, f"must be a finite number (got {value})")
    if value < low or (value == low and not low_inclusive) or value > high:
        bracket = "[" if low_inclusive else "("
        raise InvalidArgument(field, f"must be in {bracket}{low:g}, {high:g}] (got {value:g})")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_objective(objective: Objective) -> None:
    # A downtime limit is a limit: 0 would forbid every migration (and was once read as "none"); QEMU's is whole
    # milliseconds, at least 1 (below it, what was asked is not what would be enforced)
    check_number(objective.max_downtime_ms, "objective.max_downtime_ms", low=MIN_DOWNTIME_MS, high=MAX_DOWNTIME_MS)
    check_number(objective.deadline_ms, "objective.deadline_ms", low=0, high=MAX_DEADLINE_MS)


def check_text(value: str, field: str, limit: int = MAX_TEXT) -> None:
    """Free text: bounded, and without control characters (a newline could forge a line in what we print)."""
    if len(value) > limit:
        raise InvalidArgument(field, f"must be at most {limit} characters (got {len(value)})")
    if found := _CONTROL.search(value):
        raise InvalidArgument(field, f"must not contain control characters (found {found.group()!r} at "
                                     f"position {found.start()})")


def check_labels(labels: Mapping[str, str], field: str) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"at most {MAX_LABELS} labels (got {len(labels)})")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_KEY or _CONTROL.search(key):
            raise InvalidArgument(f"{field}[{shown(key)}]",
                                  f"label keys must be 1-{MAX_LABEL_KEY} characters, no control characters")
        check_text(value, f"{field}[{key!r}]", MAX_LABEL_VALUE)


def check_groups(groups: Iterable[str], field: str) -> None:
    items = list(groups)
    if len(items) > MAX_GROUPS:
        raise InvalidArgument(field, f"at most {MAX_GROUPS} groups (got {len(items)})")
    for i, group in enumerate(items):
        check_id(group, f"{field}[{i}]")


def check_networks(networks: Iterable[str], field: str, limit: int) -> None:
    """Network names, as identifiers (a libvirt network, bridge, VLAN or pool name)."""
    items = sorted(networks)
    if len(items) > limit:
        raise InvalidArgument(field, f"at most {limit} networks (got {len(items)})")
    for i, name in enumerate(items):
        check_id(name, f"{field}[{i}]")


HOST_NAME_PATTERN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                               r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def check_migration_address(value: str, field: str) -> None:
    """Empty, an IP address or a host name: QEMU listens on it and the source connects to it (libvirt's migrate
    URI and listen address), so a port, scheme or path in it would break both, or say something else."""
    if not value:
        return
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not HOST_NAME_PATTERN.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InvalidArgument(field, f"must be an IP address or a host name, without port, scheme or path "
                                     f"(got {shown!r})")


def check_host(host: Host, field: str) -> None:
    check_id(host.id, f"{field}.id")
    check_number(host.cpu_cores, f"{field}.cpu_cores", low=1, high=MAX_HOST_CORES)
    check_number(host.memory_mib, f"{field}.memory_mib", low=1, high=MAX_HOST_MEMORY_MIB)
    check_text(host.cpu_model, f"{field}.cpu_model")
    check_labels(host.labels, f"{field}.labels")
    check_number(host.network_bandwidth_mib_s, f"{field}.network_bandwidth_mib_s", low=MIN_BANDWIDTH_MIB_S,
                 high=MAX_BANDWIDTH_MIB_S)
    check_text(host.hypervisor_uri, f"{field}.hypervisor_uri", 1024)
    check_migration_address(host.migration_address, f"{field}.migration_address")
    check_number(host.idle_power_w, f"{field}.idle_power_w", low=0, high=MAX_POWER_W)
    check_number(host.max_power_w, f"{field}.max_power_w", low=0, high=MAX_POWER_W)
    if host.max_power_w and host.idle_power_w > host.max_power_w:
        raise InvalidArgument(f"{field}.idle_power_w", "must not exceed max_power_w")
    check_networks(host.networks, f"{field}.networks", MAX_HOST_NETWORKS)
    _optional(host.local_disk_free_mib, f"{field}.local_disk_free_mib", high=MAX_HOST_DISK_MIB)


def check_vm(vm: Vm, field: str) -> None:
    check_id(vm.id, f"{field}.id")
    check_id(vm.host_id, f"{field}.host_id")
    check_number(vm.memory_mib, f"{field}.memory_mib", low=1, high=MAX_VM_MEMORY_MIB)
    check_number(vm.vcpus, f"{field}.vcpus", low=1, high=MAX_VM_VCPUS)
    check_labels(vm.labels, f"{field}.labels")
    wrong = check_vm_label(vm.labels) or check_evacuation_labels(vm.labels)
    if wrong:
        raise InvalidArgument(f"{field}.labels", wrong)
    check_groups(sorted(vm.affinity_groups), f"{field}.affinity_groups")
    check_groups(sorted(vm.anti_affinity_groups), f"{field}.anti_affinity_groups")
    check_text(vm.cpu_model, f"{field}.cpu_model")
    check_networks(vm.networks, f"{field}.networks", MAX_VM_NETWORKS)
    check_disks(vm.disks, f"{field}.disks")


def check_disks(disks: Sequence[Disk], field: str) -> None:
    if len(disks) > MAX_VM_DISKS:
        raise InvalidArgument(field, f"at most {MAX_VM_DISKS} disks (got {len(disks)})")
    seen: dict[str, int] = {}
    for i, disk in enumerate(disks):
        where = f"{field}[{i}]"
        if not DISK_TARGET_PATTERN.fullmatch(disk.target):
            raise InvalidArgument(f"{where}.target", "must be a device name such as 'vda' (1-32 lower-case letters "
                                                     f"and digits, a letter first; got {shown(disk.target)})")
        if disk.target in seen:
            raise InvalidArgument(f"{where}.target", f"duplicate of {field}[{seen[disk.target]}] "
                                                     f"({disk.target!r})")
        seen[disk.target] = i
        check_number(disk.size_mib, f"{where}.size_mib", low=0, high=MAX_DISK_MIB, low_inclusive=False)
        check_number(disk.used_mib, f"{where}.used_mib", low=0, high=MAX_DISK_MIB)
        if disk.used_mib > disk.size_mib:
            raise InvalidArgument(f"{where}.used_mib", f"must not exceed size_mib ({disk.used_mib:g} > "
                                                       f"{disk.size_mib:g})")
        _optional(disk.write_rate_mib_s, f"{where}.write_rate_mib_s", high=MAX_DISK_WRITE_RATE_MIB_S)


def _date(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_time(time_s: float, field: str, now_s: float) -> None:
    latest = now_s + MAX_FUTURE_SKEW_S
    if not math.isfinite(time_s):
        raise InvalidArgument(field, f"must be a finite time (got {time_s})")
    if not EARLIEST_SAMPLE_S <= time_s <= latest:
        got = _date(time_s) if -62_135_596_800 < time_s < 253_402_300_800 else f"{time_s:g} s"
        raise InvalidArgument(field, f"must be between {_date(EARLIEST_SAMPLE_S)} and {_date(latest)} "
                                     f"(at most {MAX_FUTURE_SKEW_S / 60:.0f} minutes ahead; got {got})")


def _optional(value: float | None, field: str, *, high: float) -> None:
    if value is not None:
        check_number(value, field, low=0, high=high)


def _fine(value: float | None, high: float) -> bool:
    return value is None or 0 <= value <= high  # False for NaN and infinities too


def host_sample_fine(sample: HostSample, now_s: float) -> bool:
    """Whether `check_host_sample` passes, told in one expression: tens of thousands of samples a second come
    through here, and only one that fails is checked again field by field for the error to name."""
    return bool(EARLIEST_SAMPLE_S <= sample.time_s <= now_s + MAX_FUTURE_SKEW_S
                and _fine(sample.cpu_utilization, 1.0) and _fine(sample.memory_used_mib, MAX_HOST_MEMORY_MIB)
                and _fine(sample.network_rx_mib_s, MAX_BANDWIDTH_MIB_S)
                and _fine(sample.network_tx_mib_s, MAX_BANDWIDTH_MIB_S) and _fine(sample.power_w, MAX_POWER_W)
                and _fine(sample.load_per_cpu, MAX_LOAD_PER_CPU)
                and ID_PATTERN.fullmatch(sample.host_id))


def check_host_sample(sample: HostSample, field: str, now_s: float) -> None:
    if host_sample_fine(sample, now_s):
        return
    check_id(sample.host_id, f"{field}.host_id")
    check_time(sample.time_s, f"{field}.time", now_s)
    _optional(sample.cpu_utilization, f"{field}.cpu_utilization_ratio", high=1.0)
    _optional(sample.memory_used_mib, f"{field}.memory_used_mib", high=MAX_HOST_MEMORY_MIB)
    _optional(sample.network_rx_mib_s, f"{field}.network_rx_mib_s", high=MAX_BANDWIDTH_MIB_S)
    _optional(sample.network_tx_mib_s, f"{field}.network_tx_mib_s", high=MAX_BANDWIDTH_MIB_S)
    _optional(sample.power_w, f"{field}.power_w", high=MAX_POWER_W)
    _optional(sample.load_per_cpu, f"{field}.load_per_cpu_ratio", high=MAX_LOAD_PER_CPU)


def vm_sample_fine(sample: VmSample, now_s: float) -> bool:
    """Whether `check_vm_sample` passes, in one expression (see host_sample_fine)."""
    return bool(EARLIEST_SAMPLE_S <= sample.time_s <= now_s + MAX_FUTURE_SKEW_S
                and _fine(sample.cpu_utilization, 1.0) and _fine(sample.memory_used_mib, MAX_VM_MEMORY_MIB)
                and _fine(sample.dirty_rate_mib_s, MAX_DIRTY_RATE_MIB_S)
                and _fine(sample.working_set_mib, MAX_VM_MEMORY_MIB)
                and _fine(sample.disk_write_rate_mib_s, MAX_DISK_WRITE_RATE_MIB_S)
                and _fine(sample.resident_memory_mib, MAX_RESIDENT_MEMORY_MIB)
                and ID_PATTERN.fullmatch(sample.vm_id))


def check_vm_sample(sample: VmSample, field: str, now_s: float) -> None:
    if vm_sample_fine(sample, now_s):
        return
    check_id(sample.vm_id, f"{field}.vm_id")
    check_time(sample.time_s, f"{field}.time", now_s)
    _optional(sample.cpu_utilization, f"{field}.cpu_utilization_ratio", high=1.0)
    _optional(sample.memory_used_mib, f"{field}.memory_used_mib", high=MAX_VM_MEMORY_MIB)
    _optional(sample.dirty_rate_mib_s, f"{field}.dirty_rate_mib_s", high=MAX_DIRTY_RATE_MIB_S)
    _optional(sample.working_set_mib, f"{field}.working_set_mib", high=MAX_VM_MEMORY_MIB)
    _optional(sample.disk_write_rate_mib_s, f"{field}.disk_write_rate_mib_s", high=MAX_DISK_WRITE_RATE_MIB_S)
    _optional(sample.resident_memory_mib, f"{field}.resident_memory_mib", high=MAX_RESIDENT_MEMORY_MIB)


MAX_AUTOMATION_THRESHOLD = 1e6


def check_automation(cluster: str, level: str, min_benefit_over_cost: float) -> Level:
    """A cluster's automation setting as an admin sends it; returns its level."""
    check_id(cluster, "cluster")
    if level not in {str(x) for x in Level}:
        raise InvalidArgument("level", f"must be one of {', '.join(Level)} (got {level!r})")
    if not math.isfinite(min_benefit_over_cost) or not 0 <= min_benefit_over_cost <= MAX_AUTOMATION_THRESHOLD:
        raise InvalidArgument("min_benefit_over_cost", f"must be in [0, {MAX_AUTOMATION_THRESHOLD:g}] "
                                                       f"(got {min_benefit_over_cost})")
    return Level(level)


def check_decision(decision: Decision, actor: str, reason: str) -> None:
    """Who decides about a recommendation, and why: an actor always, a reason to reject."""
    check_text(actor, "actor")
    check_text(reason, "reason", 2048)
    if not actor.strip():
        raise InvalidArgument("actor", "is required: say who decides")
    if decision is Decision.REJECT and not reason.strip():
        raise InvalidArgument("reason", "is required to reject a recommendation")
