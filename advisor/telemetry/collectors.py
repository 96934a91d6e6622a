"""Background collection: pull samples from Prometheus and measure dirty rates through the hypervisors, on a
schedule, into the same store that pushed samples feed.

Each collector is a plain function run by `Periodic` in a daemon thread. Pulled data are lenient where pushes are
strict: a pushed batch with an unknown VM is refused whole (the caller can fix it), but a pulled series for a VM
the advisor does not know is skipped and counted (nobody to tell).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

from advisor.adapters.prometheus.queries import PrometheusQueries
from advisor.adapters.prometheus.source import PrometheusSource
from advisor.adapters.sql.definitions import DefinitionArchive
from advisor.config import Settings
from advisor.execution.hypervisor import GuestDefinition, Hypervisor
from advisor.metrics import MIB_BYTES, AdvisorMetrics
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, measure_dirty_rates, read_definitions
from advisor.usecases.ingestion import Ingestion
from advisor.usecases.liveness import HypervisorSigns
from advisor.usecases.migrations import Migrations

log = logging.getLogger("advisor.telemetry")


class Periodic:
    """Run `task` every `interval_s` seconds in a daemon thread until `stop()`; a failing run is logged, not fatal."""

    def __init__(self, name: str, interval_s: float, task: Callable[[], None], *, final_run: bool = False) -> None:
        self.name = name
        self._interval_s = interval_s
        self._task = task
        self._final_run = final_run  # run once more at stop (e.g. to save what is in memory)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._final_run:
            try:
                self._task()
            except Exception:
                log.exception("collector's last run failed", extra={"collector": self.name})

    def run_once(self) -> None:
        """One run now, in the caller's thread (as a test or a command drives a collector)."""
        self._task()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._task()
            except Exception:
                log.exception("collector run failed", extra={"collector": self.name})
            self._stop.wait(self._interval_s)


def prometheus_collector(source: PrometheusSource, ingestion: Ingestion, metrics: AdvisorMetrics) -> Callable[[], None]:
    def collect() -> None:
        hosts, vms = ingestion.known_ids()
        started = time.perf_counter()
        result = source.poll(hosts, vms)
        metrics.source_seconds.labels("prometheus").observe(time.perf_counter() - started)
        health = result.health
        metrics.source_up.labels("prometheus").set(1 if health.ok else 0)
        for reason, count in result.skipped.items():
            metrics.source_skipped.labels("prometheus", reason).inc(count)
        if not health.ok or result.from_cache:
            return  # the source has logged why
        skipped = ingestion.ingest_pulled(result.host_samples, result.vm_samples)
        for reason, count in skipped.items():
            metrics.source_skipped.labels("prometheus", reason).inc(count)

    return collect


# The longer page-sampling window (seconds), and how often (every n-th collection) it is measured.
WORKING_SET_WINDOW_S = 4
WORKING_SET_EVERY = 4
# Every n-th collection also reads the guests' definitions (kept for restarts elsewhere if their host dies).
DEFINITIONS_EVERY = 4
# Keeps a guest's definition as read on a host at a time (advisor.adapters.sql.definitions).
KeepDefinition = Callable[[str, str, GuestDefinition, float], object]


def dirty_rate_collector(
    ingestion: Ingestion,
    connect: Callable[[str], Hypervisor],
    migrating_vms: Callable[[], frozenset[str]],
    metrics: AdvisorMetrics,
    *,
    clock: Callable[[], float],
    readings: int = 2,
    working_set_every: int = WORKING_SET_EVERY,
    signs: HypervisorSigns | None = None,
    keep_definition: KeepDefinition | None = None,
) -> Callable[[], None]:
    """Measure every running guest's dirty rate through its hypervisor, except guests that migrate now, read
    its CPU and memory use and the rate it writes its local disks (from consecutive block statistics), and export
    the figures (`advisor_vm_dirty_rate_bytes_per_second`, `advisor_vm_cpu_ratio`, `advisor_vm_memory_used_bytes`,
    `advisor_vm_disk_write_bytes_per_second`, each for the guests measured in the round only) so that Prometheus
    keeps their history. Every `working_set_every`-th round also measures over WORKING_SET_WINDOW_S: what the
    guest rewrote in that window is a lower bound of its writable working set, which a 1 s reading cannot see (0
    disables). Which hypervisors
    answered goes to `signs` (how an evacuation knows a host is down), and every DEFINITIONS_EVERY-th round, the
    first included, each running guest's definition to `keep_definition`."""

    stats = GuestStatsReader()
    rounds = 0
    # The VMs (hosts) each per-VM (per-host) gauge was set for in the last round. A gauge left at a guest's last
    # figure after it stopped, left its hosts, or while it migrates (not measured then) would be scraped back by
    # Prometheus as a fresh measurement every 15 s: what this round did not measure is removed instead.
    exported: dict[Gauge, set[str]] = {}

    def export(gauge: Gauge, measured: dict[str, float]) -> None:
        for key, value in measured.items():
            gauge.labels(key).set(value)
        for key in exported.get(gauge, set()) - measured.keys():
            gauge.remove(key)
        exported[gauge] = set(measured)

    def collect() -> None:
        nonlocal rounds
        hosts = [HostConnection(h.id, h.hypervisor_uri) for h in ingestion.hosts_with_hypervisor()]
        if not hosts:
            for gauge in list(exported):
                export(gauge, {})
            return
        reached: set[str] = set()
        samples = measure_dirty_rates(hosts, connect, clock, readings=readings, seconds=1, skip=migrating_vms(),
                                      reached=reached)
        rounds += 1
        if working_set_every and rounds % working_set_every == 1 % working_set_every:
            samples += measure_dirty_rates(hosts, connect, clock, readings=1, seconds=WORKING_SET_WINDOW_S,
                                           skip=migrating_vms(), as_working_set=True)
        export(metrics.vm_dirty_rate, {s.vm_id: s.dirty_rate_mib_s * MIB_BYTES for s in samples
                                       if s.dirty_rate_mib_s is not None})
        others = stats.read(hosts, connect, ingestion.local_disks())
        export(metrics.vm_cpu, {s.vm_id: s.cpu_utilization for s in others if s.cpu_utilization is not None})
        export(metrics.vm_memory_used, {s.vm_id: s.memory_used_mib * MIB_BYTES for s in others
                                        if s.memory_used_mib is not None})
        export(metrics.vm_disk_write_rate, {s.vm_id: s.disk_write_rate_mib_s * MIB_BYTES for s in others
                                            if s.disk_write_rate_mib_s is not None})
        skipped = ingestion.ingest_pulled([], samples + others)
        for reason, count in skipped.items():
            metrics.source_skipped.labels("libvirt", reason).inc(count)
        # Up means every hypervisor answered; each host's own gauge says which did not (a host gone from the
        # inventory is no longer said up or down).
        export(metrics.hypervisor_up, {c.host_id: 1 if c.host_id in reached else 0 for c in hosts})
        for conn in hosts:
            if signs is not None and conn.host_id in reached:
                signs.answered(conn.host_id, clock())
            elif signs is not None:
                signs.failed(conn.host_id, clock(), "not reached by the hypervisor telemetry (see the log)")
        if keep_definition is not None and rounds % DEFINITIONS_EVERY == 1 % DEFINITIONS_EVERY:
            for vm_id, host_id, definition in read_definitions([h for h in hosts if h.host_id in reached], connect):
                keep_definition(vm_id, host_id, definition, clock())
        metrics.source_up.labels("libvirt").set(1 if len(reached) == len(hosts) else 0)

    return collect


def sources(settings: Settings, ingestion: Ingestion, connect: Callable[[str], Hypervisor], migrations: Migrations,
            metrics: AdvisorMetrics, clock: Callable[[], float], signs: HypervisorSigns,
            definitions: DefinitionArchive) -> list[Periodic]:
    """The collectors that pull metrics in on a schedule: Prometheus, and the hypervisors' own measurements (with
    which hypervisors answer, and the guests' definitions)."""
    collectors = []
    if settings.prometheus_url:
        queries = PrometheusQueries(
            host_label=settings.prometheus_host_label, vm_label=settings.prometheus_vm_label,
            window=settings.prometheus_window, migration_interface=settings.prometheus_migration_interface,
            max_age_s=settings.prometheus_max_age_s,
        )
        source = PrometheusSource(settings.prometheus_url, queries, timeout_s=settings.prometheus_timeout_s)
        collectors.append(Periodic("prometheus", settings.prometheus_poll_interval_s,
                                   prometheus_collector(source, ingestion, metrics)))
    if settings.dirty_rate_interval_s > 0:
        collectors.append(Periodic("dirty-rate", settings.dirty_rate_interval_s,
                                   dirty_rate_collector(ingestion, connect, migrations.migrating_vms, metrics,
                                                        clock=clock, readings=1, signs=signs,
                                                        keep_definition=definitions.keep)))
    return collectors
