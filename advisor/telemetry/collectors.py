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

from advisor.adapters.prometheus.source import PrometheusSource
from advisor.execution.hypervisor import Hypervisor
from advisor.metrics import AdvisorMetrics
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, measure_dirty_rates
from advisor.usecases.ingestion import Ingestion

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
            log.warning("prometheus unavailable", extra={"error": health.last_error,
                                                         "failures": health.consecutive_failures})
            return
        skipped = ingestion.ingest_pulled(result.host_samples, result.vm_samples)
        for reason, count in skipped.items():
            metrics.source_skipped.labels("prometheus", reason).inc(count)

    return collect


# The longer page-sampling window (seconds), and how often (every n-th collection) it is measured.
WORKING_SET_WINDOW_S = 4
WORKING_SET_EVERY = 4


def dirty_rate_collector(
    ingestion: Ingestion,
    connect: Callable[[str], Hypervisor],
    migrating_vms: Callable[[], frozenset[str]],
    metrics: AdvisorMetrics,
    *,
    clock: Callable[[], float],
    readings: int = 2,
    working_set_every: int = WORKING_SET_EVERY,
) -> Callable[[], None]:
    """Measure every running guest's dirty rate through its hypervisor, except guests that migrate now, read
    its CPU and memory use, and export the figures (`advisor_vm_dirty_rate_mib_s`, `advisor_vm_cpu_ratio`,
    `advisor_vm_memory_used_mib`) so that Prometheus keeps their history. Every `working_set_every`-th round
    also measures over WORKING_SET_WINDOW_S: what the guest rewrote in that window is a lower bound of its writable
    working set, which a 1 s reading cannot see (0 disables)."""

    stats = GuestStatsReader()
    rounds = 0

    def collect() -> None:
        nonlocal rounds
        hosts = [HostConnection(h.id, h.hypervisor_uri) for h in ingestion.hosts_with_hypervisor()]
        if not hosts:
            return
        reached: set[str] = set()
        samples = measure_dirty_rates(hosts, connect, clock, readings=readings, seconds=1, skip=migrating_vms(),
                                      reached=reached)
        rounds += 1
        if working_set_every and rounds % working_set_every == 1 % working_set_every:
            samples += measure_dirty_rates(hosts, connect, clock, readings=1, seconds=WORKING_SET_WINDOW_S,
                                           skip=migrating_vms(), as_working_set=True)
        for s in samples:
            if s.dirty_rate_mib_s is not None:
                metrics.vm_dirty_rate.labels(s.vm_id).set(s.dirty_rate_mib_s)
        others = stats.read(hosts, connect)
        for s in others:
            if s.cpu_utilization is not None:
                metrics.vm_cpu.labels(s.vm_id).set(s.cpu_utilization)
            if s.memory_used_mib is not None:
                metrics.vm_memory_used.labels(s.vm_id).set(s.memory_used_mib)
        skipped = ingestion.ingest_pulled([], samples + others)
        for reason, count in skipped.items():
            metrics.source_skipped.labels("libvirt", reason).inc(count)
        # Up means every hypervisor answered; each host's own gauge says which did not.
        for conn in hosts:
            metrics.hypervisor_up.labels(conn.host_id).set(1 if conn.host_id in reached else 0)
        metrics.source_up.labels("libvirt").set(1 if len(reached) == len(hosts) else 0)

    return collect
