"""What the Prometheus source asks: the PromQL of each metric, its unit, and how series labels name hosts and VMs.

Configuration with documented defaults (docs/prometheus.md); pure values, no I/O. The conversion of answers is in
`convert`, the adapter that runs the queries in `source`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any, Final, Literal

from advisor.domain import validation
from advisor.domain.errors import Unavailable
from advisor.domain.model import MIB

log = logging.getLogger("advisor.telemetry.prometheus")

log = logging.getLogger("advisor.telemetry.prometheus")

BYTES_TO_MIB: Final = 1.0 / MIB
MS_TO_S: Final = 1e-3
NS_TO_S: Final = 1e-9
# Prometheus refuses range queries of more than 11,000 points per series.
MAX_RANGE_POINTS: Final = 11_000

# One result entry of an instant query: {"metric": {label: value}, "value": [unix_time, "1.5"]}.
QueryResult = Sequence[Mapping[str, Any]]
EntityKind = Literal["host", "vm"]


class PrometheusError(Unavailable):
    """Prometheus could not be queried: unreachable, too slow, or it rejected or garbled a query. Either way the
    samples cannot be had now; a caller may ask again later."""


@dataclass(frozen=True)
class MetricQuery:
    """One metric: PromQL giving one series per host or VM, how old its data is, and the factor to domain units.

    `expr` and `freshness` may use the placeholders `$host` and `$vm` (the entity label names), `$window` (the
    rate window), `$devices` (the network device matcher) and `$select` (empty when polling; `label="<vm>"`
    when reading one VM's history, so Prometheus computes that VM's series only: put it inside every selector,
    e.g. `foo{$select}` or `foo{job="x",$select}`); write `$$` for a literal `$`.
    `freshness` gives, per entity, the unix time of the newest raw sample behind `expr` (usually
    `max by (...) (timestamp(<selector>))`); "" skips the stale check. An empty `expr` disables the metric.
    `label` names the label that carries the entity id in both results; "" means the entity's default label.
    """

    expr: str
    freshness: str = ""
    scale: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class PrometheusQueries:
    """The PromQL and the labels that map series to host ids and VM ids. The defaults fit node_exporter 1.x, the
    Debian libvirt exporter 0.2 and the advisor's own `advisor_vm_dirty_rate_bytes_per_second{vm=...}` gauge."""

    # Label of the host metrics that names the host, and how its values map to host ids: `host_ids` first, else
    # the value itself with a trailing ":port" removed when `strip_port` (so instance="compute-1:9100" is
    # host "compute-1"). Set host_label="host" if your scrape config adds a host label.
    host_label: str = "instance"
    host_ids: Mapping[str, str] = field(default_factory=dict)
    strip_port: bool = True
    # Label of the VM metrics that names the VM (libvirt's domain name is the advisor's VM id by default).
    vm_label: str = "domain"
    vm_ids: Mapping[str, str] = field(default_factory=dict)
    # rate() window: at least 4 scrape intervals, so that a missed scrape does not make a rate disappear.
    window: str = "2m"
    # The host's migration network interface; "" sums all devices except those matching `excluded_devices`.
    migration_interface: str = ""
    excluded_devices: str = "lo|veth.*|vnet.*|tap.*|virbr.*|docker.*|cni.*|flannel.*"
    # Samples older than this (seconds, against the source's clock) are ignored and counted as stale. Prometheus
    # itself drops series silent for longer than its lookback (5 min by default): those are missing instead.
    max_age_s: float = 120.0
    # Ratios a little outside [0, 1] (rate() extrapolation, emulator threads) are clamped; beyond this, dropped.
    ratio_tolerance: float = 0.05

    host_cpu: MetricQuery = MetricQuery(
        '1 - avg by ($host) (rate(node_cpu_seconds_total{mode="idle"}[$window]))',
        'max by ($host) (timestamp(node_cpu_seconds_total{mode="idle"}))',
    )
    host_memory: MetricQuery = MetricQuery(
        "max by ($host) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)",
        "max by ($host) (timestamp(node_memory_MemAvailable_bytes))",
        scale=BYTES_TO_MIB,
    )
    host_network_rx: MetricQuery = MetricQuery(
        "sum by ($host) (rate(node_network_receive_bytes_total{$devices}[$window]))",
        "max by ($host) (timestamp(node_network_receive_bytes_total{$devices}))",
        scale=BYTES_TO_MIB,
    )
    host_network_tx: MetricQuery = MetricQuery(
        "sum by ($host) (rate(node_network_transmit_bytes_total{$devices}[$window]))",
        "max by ($host) (timestamp(node_network_transmit_bytes_total{$devices}))",
        scale=BYTES_TO_MIB,
    )
    # Off by default; e.g. MetricQuery("max by ($host) (ipmi_dcmi_power_consumption_watts)", ...).
    host_power: MetricQuery = MetricQuery("")
    # Runnable threads per CPU: a CPU utilisation stops at 100%, the run queue says how far past it a host is (a
    # migration on a host whose threads wait for cores takes longer).
    host_load: MetricQuery = MetricQuery(
        'max by ($host) (node_load1) / count by ($host) (node_cpu_seconds_total{mode="idle"})',
        "max by ($host) (timestamp(node_load1))",
    )
    # CPU time of the whole domain over its vCPUs: the fraction of the VM's own vCPUs in use.
    vm_cpu: MetricQuery = MetricQuery(
        "sum by ($vm) (rate(libvirt_domain_info_cpu_time_seconds_total{$select}[$window]))"
        " / max by ($vm) (libvirt_domain_info_virtual_cpus{$select})",
        "max by ($vm) (timestamp(libvirt_domain_info_cpu_time_seconds_total))",
    )
    # The domain's current memory (balloon target); the exporter has no finer figure.
    vm_memory: MetricQuery = MetricQuery(
        "max by ($vm) (libvirt_domain_info_memory_usage_bytes{$select})",
        "max by ($vm) (timestamp(libvirt_domain_info_memory_usage_bytes))",
        scale=BYTES_TO_MIB,
    )
    vm_dirty_rate: MetricQuery = MetricQuery(
        "max by (vm) (advisor_vm_dirty_rate_bytes_per_second{$select})",
        "max by (vm) (timestamp(advisor_vm_dirty_rate_bytes_per_second))",
        scale=BYTES_TO_MIB,
        label="vm",
    )
    # What the domain's QEMU process holds resident (libvirt's memoryStats rss), from which the first pass is
    # estimated. Off by default: the Debian exporter 0.2 has no memory statistics. Exporters that read them mostly
    # call it libvirt_domain_memory_stats_rss_bytes: then `max by ($vm) (libvirt_domain_memory_stats_rss_bytes
    # {$select})` (all on one line), freshness `max by ($vm) (timestamp(libvirt_domain_memory_stats_rss_bytes))`,
    # scale=BYTES_TO_MIB.
    vm_resident: MetricQuery = MetricQuery("")

    def __post_init__(self) -> None:
        if self.max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive (got {self.max_age_s})")
        if not 0 <= self.ratio_tolerance < 1:
            raise ValueError(f"ratio_tolerance must be in [0, 1) (got {self.ratio_tolerance})")
        for name, _, _ in METRICS:
            query: MetricQuery = getattr(self, name)
            if not math.isfinite(query.scale) or query.scale <= 0:
                raise ValueError(f"{name}.scale must be a positive number (got {query.scale})")
        self.rendered()  # unknown placeholders fail here, not at the first poll

    def label_for(self, name: str) -> str:
        kind = _KIND[name]
        query: MetricQuery = getattr(self, name)
        return query.label or (self.host_label if kind == "host" else self.vm_label)

    def devices_matcher(self) -> str:
        if self.migration_interface:
            return f"device={promql_string(self.migration_interface)}"
        return f"device!~{promql_string(self.excluded_devices)}"

    def rendered(self) -> dict[str, MetricQuery]:
        """The enabled metrics with their placeholders filled in, by metric name (see `METRICS`)."""
        return {name: self.render(name) for name, _, _ in METRICS if getattr(self, name).expr}

    def render(self, name: str, select: str = "") -> MetricQuery:
        """One metric with its placeholders filled in; `select` is a label matcher for `$select`."""
        values = {"host": self.host_label, "vm": self.vm_label, "window": self.window,
                  "devices": self.devices_matcher(), "select": select}
        query: MetricQuery = getattr(self, name)
        try:
            return MetricQuery(
                Template(query.expr).substitute(values),
                Template(query.freshness).substitute(values) if query.freshness else "",
                query.scale,
                self.label_for(name),
            )
        except KeyError as error:
            raise ValueError(f"{name}: unknown placeholder ${error.args[0]} in {query.expr!r} / "
                             f"{query.freshness!r}; known: $host $vm $window $devices $select, $$ for a $") from None
        except ValueError as error:
            raise ValueError(f"{name}: bad placeholder in {query.expr!r} / {query.freshness!r} ({error}); "
                             "write $$ for a literal $") from None

    def host_id(self, label_value: str) -> str:
        mapped = self.host_ids.get(label_value)
        if mapped is not None:
            return mapped
        return _strip_port(label_value) if self.strip_port else label_value

    def vm_id(self, label_value: str) -> str:
        return self.vm_ids.get(label_value, label_value)

    def vm_label_value(self, vm_id: str) -> str:
        """The label value that names `vm_id` (the inverse of `vm_id`)."""
        for raw, mapped in self.vm_ids.items():
            if mapped == vm_id:
                return raw
        return vm_id


# (metric name in PrometheusQueries, entity kind, field of HostSample / VmSample)
METRICS: Final[tuple[tuple[str, EntityKind, str], ...]] = (
    ("host_cpu", "host", "cpu_utilization"),
    ("host_memory", "host", "memory_used_mib"),
    ("host_network_rx", "host", "network_rx_mib_s"),
    ("host_network_tx", "host", "network_tx_mib_s"),
    ("host_power", "host", "power_w"),
    ("host_load", "host", "load_per_cpu"),
    ("vm_cpu", "vm", "cpu_utilization"),
    ("vm_memory", "vm", "memory_used_mib"),
    ("vm_dirty_rate", "vm", "dirty_rate_mib_s"),
    ("vm_resident", "vm", "resident_memory_mib"),
)
_KIND: Final = {name: kind for name, kind, _ in METRICS}
_FIELD: Final = {name: attr for name, _, attr in METRICS}
# Upper bounds: beyond any real machine, so a value above one is a unit mistake. None marks a ratio.
VALUE_LIMITS: Final[dict[str, float | None]] = {
    "host_cpu": None,
    "host_memory": validation.MAX_HOST_MEMORY_MIB,
    "host_network_rx": validation.MAX_BANDWIDTH_MIB_S,
    "host_network_tx": validation.MAX_BANDWIDTH_MIB_S,
    "host_power": validation.MAX_POWER_W,
    "host_load": validation.MAX_LOAD_PER_CPU,
    "vm_cpu": None,
    "vm_memory": validation.MAX_VM_MEMORY_MIB,
    "vm_dirty_rate": validation.MAX_DIRTY_RATE_MIB_S,
    "vm_resident": validation.MAX_RESIDENT_MEMORY_MIB,
}
VM_HISTORY_METRICS: Final = {"cpu_utilization": "vm_cpu", "memory_used_mib": "vm_memory",
                             "dirty_rate_mib_s": "vm_dirty_rate"}


def promql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _strip_port(value: str) -> str:
    """'compute-1:9100' -> 'compute-1', '[fd00::1]:9100' -> 'fd00::1'; anything else unchanged."""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    head, sep, port = value.rpartition(":")
    if sep and head and port.isdigit() and ":" not in head:
        return head
    return value


# -- the pure part -------------------------------------------------------------------------------------------


