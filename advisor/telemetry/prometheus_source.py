"""Host and VM metrics read from Prometheus: node_exporter, the libvirt exporter and the advisor's own dirty rates.

PromQL in, domain values out. `PrometheusQueries` holds the PromQL and the label names (configuration, with
documented defaults, see docs/prometheus.md); `convert` is the pure function that turns query results (the JSON
`result` lists the HTTP API returns) into `HostSample`s and `VmSample`s; `PrometheusSource` runs the queries through
prometheus-api-client, keeps the last good state and reports its health.

What real deployments do, and what happens here:
- a series is missing: that metric stays unmeasured (None), never 0; `PollResult.missing` counts them;
- a sample is older than `max_age_s` (its exporter stopped): ignored, counted as "stale";
- counters reset (restarts): the default PromQL uses rate(), which handles resets;
- units differ: each query has an explicit `scale` to the domain's unit (bytes -> MiB, ms -> s, ...);
- a series' labels do not map to a known host/VM: skipped, counted ("unknown_host", "unknown_vm", "unlabelled");
- NaN/Inf: dropped, counted ("non_finite"); values beyond any machine (a unit mistake): "out_of_range";
- the server is down or slow: every request has a deadline; the poll fails as a whole with a clear message, the
  last good state is served with its age, and `SourceHealth` says how long it has been failing.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from string import Template
from typing import Any, Final, Literal

import requests.exceptions
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from advisor.domain import validation
from advisor.domain.errors import AdvisorError
from advisor.domain.model import MIB, HostSample, VmSample

log = logging.getLogger("advisor.telemetry.prometheus")

BYTES_TO_MIB: Final = 1.0 / MIB
MS_TO_S: Final = 1e-3
NS_TO_S: Final = 1e-9
# Prometheus refuses range queries of more than 11,000 points per series.
MAX_RANGE_POINTS: Final = 11_000

# One result entry of an instant query: {"metric": {label: value}, "value": [unix_time, "1.5"]}.
QueryResult = Sequence[Mapping[str, Any]]
EntityKind = Literal["host", "vm"]


class PrometheusError(AdvisorError):
    """Prometheus could not be queried: unreachable, too slow, or it rejected or garbled a query."""


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
    Debian libvirt exporter 0.2 and the advisor's own `advisor_vm_dirty_rate_mib_s{vm=...}` gauge."""

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
        "max by (vm) (advisor_vm_dirty_rate_mib_s{$select})",
        "max by (vm) (timestamp(advisor_vm_dirty_rate_mib_s))",
        label="vm",
    )

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
            return f"device={_promql_string(self.migration_interface)}"
        return f"device!~{_promql_string(self.excluded_devices)}"

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
    ("vm_cpu", "vm", "cpu_utilization"),
    ("vm_memory", "vm", "memory_used_mib"),
    ("vm_dirty_rate", "vm", "dirty_rate_mib_s"),
)
_KIND: Final = {name: kind for name, kind, _ in METRICS}
_FIELD: Final = {name: attr for name, _, attr in METRICS}
# Upper bounds: beyond any real machine, so a value above one is a unit mistake. None marks a ratio.
_LIMIT: Final[dict[str, float | None]] = {
    "host_cpu": None,
    "host_memory": validation.MAX_HOST_MEMORY_MIB,
    "host_network_rx": validation.MAX_BANDWIDTH_MIB_S,
    "host_network_tx": validation.MAX_BANDWIDTH_MIB_S,
    "host_power": validation.MAX_POWER_W,
    "vm_cpu": None,
    "vm_memory": validation.MAX_VM_MEMORY_MIB,
    "vm_dirty_rate": validation.MAX_DIRTY_RATE_MIB_S,
}
VM_HISTORY_METRICS: Final = {"cpu_utilization": "vm_cpu", "memory_used_mib": "vm_memory",
                             "dirty_rate_mib_s": "vm_dirty_rate"}


def _promql_string(value: str) -> str:
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


def _number(raw: object) -> float:
    """A sample value as the API returns it: [time, "1.5"] -> 1.5 (also "NaN", "+Inf")."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
        raise ValueError(f"not a [time, value] pair: {raw!r}")
    return float(raw[1])


def _checked(name: str, value: float, tolerance: float) -> float | None:
    """The value in domain units if plausible, else None (out of range)."""
    limit = _LIMIT[name]
    if limit is None:
        if not -tolerance <= value <= 1 + tolerance:
            return None
        return min(max(value, 0.0), 1.0)
    if value < 0 or value > limit:
        return None
    return value


def _entity(queries: PrometheusQueries, kind: EntityKind, labels: Mapping[str, Any], label: str) -> str | None:
    raw = labels.get(label)
    if not isinstance(raw, str):
        return None
    return queries.host_id(raw) if kind == "host" else queries.vm_id(raw)


def _newest(
    queries: PrometheusQueries, kind: EntityKind, label: str, result: QueryResult
) -> dict[str, float]:
    """entity id -> unix time of its newest raw sample, from a freshness query's result."""
    newest: dict[str, float] = {}
    for entry in result:
        labels = entry.get("metric")
        entity = _entity(queries, kind, labels, label) if isinstance(labels, Mapping) else None
        if entity is None:
            continue
        try:
            ts = _number(entry.get("value"))
        except (TypeError, ValueError):
            continue
        if math.isfinite(ts):
            newest[entity] = max(ts, newest.get(entity, -math.inf))
    return newest


def _read(
    entry: Mapping[str, Any],
    name: str,
    kind: EntityKind,
    label: str,
    queries: PrometheusQueries,
    known: Collection[str],
    newest: Mapping[str, float],
    now_s: float,
) -> tuple[str, float, float] | str:
    """(entity id, value in domain units, sample time) of one result entry, or the reason it is skipped."""
    labels = entry.get("metric") if isinstance(entry, Mapping) else None
    if not isinstance(labels, Mapping):
        return "malformed"
    entity = _entity(queries, kind, labels, label)
    if entity is None:
        return "unlabelled"
    if entity not in known:
        return f"unknown_{kind}"
    raw = entry.get("value")
    try:
        value = _number(raw)
        eval_ts = float(raw[0])  # type: ignore[index]  # _number checked the shape
    except (TypeError, ValueError, IndexError):
        return "malformed"
    value *= getattr(queries, name).scale
    if not math.isfinite(value):
        return "non_finite"
    ts = newest.get(entity)
    if ts is not None and now_s - ts > queries.max_age_s:
        return "stale"
    checked = _checked(name, value, queries.ratio_tolerance)
    if checked is None:
        log.debug("out of range", extra={"metric": name, "entity": entity, "value": value})
        return "out_of_range"
    return entity, checked, ts if ts is not None else eval_ts


@dataclass(frozen=True)
class Converted:
    host_samples: list[HostSample]
    vm_samples: list[VmSample]
    # Series dropped, by reason: unknown_host, unknown_vm, unlabelled, stale, non_finite, out_of_range,
    # duplicate, malformed.
    skipped: dict[str, int]
    # Known entities left without a value, by metric name (whatever the reason: no series, stale, NaN...).
    missing: dict[str, int]


def convert(
    results: Mapping[str, QueryResult],
    freshness: Mapping[str, QueryResult],
    queries: PrometheusQueries,
    hosts: Collection[str],
    vms: Collection[str],
    now_s: float,
) -> Converted:
    """Samples for the known `hosts` and `vms` from instant-query results, by metric name (see `METRICS`).

    A metric absent from `results` is not measured; one absent from `freshness` is not checked for staleness.
    Each sample's time is the newest raw sample time among its metrics (the evaluation time where unknown), so
    polling twice between scrapes gives the same samples.
    """
    known = {"host": hosts if isinstance(hosts, (set, frozenset)) else frozenset(hosts),
             "vm": vms if isinstance(vms, (set, frozenset)) else frozenset(vms)}
    skipped: dict[str, int] = {}
    missing: dict[str, int] = {}
    values: dict[EntityKind, dict[str, dict[str, float]]] = {"host": {}, "vm": {}}
    times: dict[EntityKind, dict[str, float]] = {"host": {}, "vm": {}}

    for name, kind, attr in METRICS:
        if name not in results:
            continue
        label = queries.label_for(name)
        newest = _newest(queries, kind, label, freshness[name]) if name in freshness else {}
        for entry in results[name]:
            read = _read(entry, name, kind, label, queries, known[kind], newest, now_s)
            if isinstance(read, str):
                skipped[read] = skipped.get(read, 0) + 1
                continue
            entity, value, sample_ts = read
            row = values[kind].setdefault(entity, {})
            if attr in row:
                skipped["duplicate"] = skipped.get("duplicate", 0) + 1
                continue
            row[attr] = value
            times[kind][entity] = max(sample_ts, times[kind].get(entity, -math.inf))
        have = values[kind]
        lacking = sum(1 for e in known[kind] if attr not in have.get(e, {}))
        if lacking:
            missing[name] = lacking

    host_samples = [HostSample(host_id=h, time_s=times["host"][h], **row)
                    for h, row in sorted(values["host"].items())]
    vm_samples = [VmSample(vm_id=v, time_s=times["vm"][v], **row) for v, row in sorted(values["vm"].items())]
    return Converted(host_samples, vm_samples, skipped, missing)


def convert_range(
    name: str, result: Sequence[Mapping[str, Any]], queries: PrometheusQueries
) -> list[tuple[float, float]]:
    """(time, value) points of a range query's result in domain units, time-ordered; NaN/Inf and implausible
    values dropped. Several series (one entity under several label values) are merged, the first one winning."""
    query: MetricQuery = getattr(queries, name)
    points: dict[float, float] = {}
    for entry in result:
        raw_values = entry.get("values") if isinstance(entry, Mapping) else None
        if not isinstance(raw_values, Sequence):
            continue
        for pair in raw_values:
            try:
                ts = float(pair[0])
                value = _number(pair) * query.scale
            except (TypeError, ValueError, IndexError):
                continue
            if not (math.isfinite(value) and math.isfinite(ts)):
                continue
            checked = _checked(name, value, queries.ratio_tolerance)
            if checked is not None:
                points.setdefault(ts, checked)
    return sorted(points.items())


# -- the adapter ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceHealth:
    """Whether the last poll succeeded, when one last did, the newest error (kept after recovery, for the
    operator), and how many polls in a row have failed."""

    ok: bool
    last_success_s: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class PollResult:
    """What one poll yields. After a failed poll (`health.ok` False) the samples are the last good ones."""

    host_samples: list[HostSample]
    vm_samples: list[VmSample]
    skipped: dict[str, int]
    health: SourceHealth
    # Known entities without a value, by metric name (see `Converted.missing`).
    missing: dict[str, int] = field(default_factory=dict)
    # When the state served was read (source clock), and how old it is: 0 after a successful poll; after a failed
    # one, the last good state is served and `age_s` grows. None when nothing was ever read.
    as_of_s: float | None = None
    age_s: float | None = None
    # Wall seconds per request of the last successful poll, by query ("host_cpu", "host_cpu.freshness", ...).
    query_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def from_cache(self) -> bool:
        return not self.health.ok


class _Client:
    """prometheus-api-client behind a typed face: its results as plain lists, its failures as PrometheusError."""

    def __init__(self, url: str, timeout_s: float, retries: int) -> None:
        self.url = url.rstrip("/")
        # read=False: a read timeout is raised as itself, never retried (it would double the wait).
        retry = Retry(total=retries, read=False, backoff_factor=0.1, status_forcelist=(502, 503, 504),
                      raise_on_status=False)
        self._prom: Any = PrometheusConnect(url=self.url, retry=retry, timeout=timeout_s)

    def close(self) -> None:
        self._prom.close()

    def instant(self, what: str, expr: str, time_s: float, timeout_s: float) -> list[Mapping[str, Any]]:
        params = {"time": f"{time_s:.3f}", "timeout": f"{timeout_s:.3f}"}
        return self._call(what, expr, timeout_s, lambda: self._prom.custom_query(expr, params=params,
                                                                                  timeout=timeout_s))

    def range(self, what: str, expr: str, start_s: float, end_s: float, step_s: float,
              timeout_s: float) -> list[Mapping[str, Any]]:
        start = datetime.fromtimestamp(start_s, tz=UTC)
        end = datetime.fromtimestamp(end_s, tz=UTC)
        params = {"timeout": f"{timeout_s:.3f}"}
        return self._call(what, expr, timeout_s, lambda: self._prom.custom_query_range(
            expr, start_time=start, end_time=end, step=f"{step_s:g}", params=params, timeout=timeout_s))

    def _call(self, what: str, expr: str, timeout_s: float, request: Callable[[], Any]) -> list[Mapping[str, Any]]:
        try:
            data = request()
        except requests.exceptions.Timeout:
            raise PrometheusError(f"Prometheus at {self.url} did not answer within {timeout_s:.3g} s "
                                  f"(query {what})") from None
        except requests.exceptions.ConnectionError as error:
            if isinstance(_root(error), TimeoutError):
                raise PrometheusError(f"Prometheus at {self.url} did not answer within {timeout_s:.3g} s "
                                      f"(query {what})") from None
            raise PrometheusError(f"Prometheus at {self.url} is unreachable (query {what}): "
                                  f"{_root_cause(error)}") from None
        except PrometheusApiClientException as error:
            raise PrometheusError(f"Prometheus at {self.url} refused query {what} {expr!r}: "
                                  f"{_api_error(str(error))}") from None
        except (requests.exceptions.RequestException, ValueError, KeyError, TypeError) as error:
            raise PrometheusError(f"Prometheus at {self.url} gave a bad answer to query {what}: "
                                  f"{type(error).__name__}: {str(error)[:300]}") from None
        if not isinstance(data, list) or not all(isinstance(e, Mapping) for e in data):
            raise PrometheusError(f"Prometheus at {self.url} answered query {what} with something other than a "
                                  f"vector or matrix: {str(data)[:200]}")
        return data


def _api_error(message: str) -> str:
    """'HTTP Status Code 400 (b'{"status":"error","error":"..."}')' -> 'HTTP 400: ...'."""
    status = re.match(r"HTTP Status Code (\d+)", message)
    detail = re.search(r'"error":"((?:[^"\\]|\\.)*)"', message)
    if status and detail:
        return f"HTTP {status.group(1)}: {detail.group(1).replace(chr(92) * 2, chr(92))[:400]}"
    return message[:400]


def _root(error: BaseException) -> BaseException:
    seen = {id(error)}
    while error.__context__ is not None and id(error.__context__) not in seen:
        error = error.__context__
        seen.add(id(error))
    return error


def _root_cause(error: BaseException) -> str:
    root = _root(error)
    return f"{type(root).__name__}: {str(root)[:200]}"


class PrometheusSource:
    """Reads host and VM samples from Prometheus. Thread-safe; one poll at a time is enough (polls are atomic).

    `timeout_s` bounds a whole poll (its distinct queries run `workers` at a time under one deadline) and each
    history query. `clock` gives the unix time at which queries are evaluated and against which ages are
    measured. `retries` retries a refused connection or a 502/503/504 (never a timeout); the default is none,
    because the next poll is the retry.
    """

    def __init__(
        self,
        url: str,
        queries: PrometheusQueries | None = None,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        retries: int = 0,
        workers: int = 4,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive (got {timeout_s})")
        if workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers})")
        self.url = url
        self.queries = queries or PrometheusQueries()
        self._rendered = self.queries.rendered()
        self._timeout_s = timeout_s
        self._clock = clock
        self._client = _Client(url, timeout_s, retries)
        self._lock = threading.Lock()
        self._health = SourceHealth(ok=False)
        self._last_good: PollResult | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="prometheus-query") if workers > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def health(self) -> SourceHealth:
        with self._lock:
            return self._health

    def poll(self, hosts: Collection[str], vms: Collection[str]) -> PollResult:
        """The newest samples of the given hosts and VMs. Never raises for an unreachable or slow server: the
        last good state (restricted to the given hosts and VMs) is returned with its age and a failing health."""
        now = self._clock()
        hosts, vms = frozenset(hosts), frozenset(vms)
        try:
            results, freshness, timings = self._fetch(now)
        except PrometheusError as error:
            return self._failed(now, str(error), hosts, vms)
        converted = convert(results, freshness, self.queries, hosts, vms, now)
        with self._lock:
            self._health = SourceHealth(True, now, self._health.last_error, 0)
            result = PollResult(converted.host_samples, converted.vm_samples, converted.skipped, self._health,
                                converted.missing, now, 0.0, timings)
            self._last_good = result
        if converted.skipped:
            log.info("prometheus series skipped", extra={"skipped": converted.skipped})
        return result

    def _failed(self, now: float, message: str, hosts: frozenset[str], vms: frozenset[str]) -> PollResult:
        with self._lock:
            previous = self._health
            self._health = SourceHealth(False, previous.last_success_s, message, previous.consecutive_failures + 1)
            health, last = self._health, self._last_good
        log.warning("prometheus poll failed", extra={"error": message, "failures": health.consecutive_failures})
        if last is None or last.as_of_s is None:
            return PollResult([], [], {}, health)
        return PollResult(
            [s for s in last.host_samples if s.host_id in hosts],
            [s for s in last.vm_samples if s.vm_id in vms],
            {}, health, dict(last.missing), last.as_of_s, max(0.0, now - last.as_of_s),
        )

    def _fetch(
        self, now: float
    ) -> tuple[dict[str, list[Mapping[str, Any]]], dict[str, list[Mapping[str, Any]]], dict[str, float]]:
        deadline = time.monotonic() + self._timeout_s
        timings: dict[str, float] = {}
        # Each distinct PromQL runs once (several metrics may share a freshness query).
        wanted: dict[str, str] = {}
        for name, query in self._rendered.items():
            wanted.setdefault(query.expr, name)
            if query.freshness:
                wanted.setdefault(query.freshness, f"{name}.freshness")

        def run(expr: str, what: str) -> list[Mapping[str, Any]]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PrometheusError(f"Prometheus at {self._client.url} did not answer within "
                                      f"{self._timeout_s:.3g} s (poll deadline passed before query {what})")
            started = time.perf_counter()
            answer = self._client.instant(what, expr, now, remaining)
            timings[what] = time.perf_counter() - started
            return answer

        answers: dict[str, list[Mapping[str, Any]]] = {}
        if self._pool is None:
            for expr, what in wanted.items():
                answers[expr] = run(expr, what)
        else:
            futures = {expr: self._pool.submit(run, expr, what) for expr, what in wanted.items()}
            try:
                for expr, future in futures.items():
                    answers[expr] = future.result()
            finally:
                for future in futures.values():
                    future.cancel()
        results = {name: answers[query.expr] for name, query in self._rendered.items()}
        freshness = {name: answers[query.freshness] for name, query in self._rendered.items() if query.freshness}
        return results, freshness, timings

    def history(
        self, vm_id: str, metric: str, start_s: float, end_s: float, step_s: float
    ) -> list[tuple[float, float]]:
        """(time, value) points of one VM metric ("cpu_utilization", "memory_used_mib" or "dirty_rate_mib_s",
        in domain units) from `start_s` to `end_s` every `step_s` seconds: the feature windows of a forecaster.
        Points where the metric was not measured are absent. Raises PrometheusError if the server fails."""
        name = VM_HISTORY_METRICS.get(metric)
        if name is None or name not in self._rendered:
            raise ValueError(f"metric must be one of {sorted(VM_HISTORY_METRICS)} (and enabled), got {metric!r}")
        if not (math.isfinite(start_s) and math.isfinite(end_s) and start_s <= end_s):
            raise ValueError(f"need start_s <= end_s (got {start_s}, {end_s})")
        if not step_s > 0:
            raise ValueError(f"step_s must be positive (got {step_s})")
        if (end_s - start_s) / step_s + 1 > MAX_RANGE_POINTS:
            raise ValueError(f"at most {MAX_RANGE_POINTS} points per query: widen step_s or split the range")
        label = self._rendered[name].label
        raw = self.queries.vm_label_value(vm_id)
        # `$select` narrows every selector to the VM (the cost of the query no longer grows with the cluster);
        # `and on(label)` a one-series vector carrying the label keeps only its series whatever the expression.
        query = self.queries.render(name, select=f"{label}={_promql_string(raw)}")
        value = _promql_string(raw.replace("$", "$$"))
        expr = f'({query.expr}) and on({label}) label_replace(vector(1), "{label}", {value}, "", "")'
        result = self._client.range(f"history {name}", expr, start_s, end_s, step_s, self._timeout_s)
        return convert_range(name, result, self.queries)

