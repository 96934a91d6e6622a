"""The one place where the advisor's parts are built and wired together."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from advisor.api.server import RunningServer, start_server
from advisor.config import Settings
from advisor.execution.executor import ConcurrencyLimits
from advisor.execution.libvirt_adapter import LibvirtHypervisor
from advisor.metrics import AdvisorMetrics
from advisor.ml.forecast import load_dirty_forecaster
from advisor.ml.learned import load_cost_predictor
from advisor.ml.predictor import CostPredictor
from advisor.service import AdvisorService
from advisor.storage.sqlite import SqliteStore
from advisor.telemetry.collectors import Periodic, dirty_rate_collector, prometheus_collector
from advisor.telemetry.prometheus_source import PrometheusQueries, PrometheusSource

log = logging.getLogger("advisor")


def load_predictor(models_dir: Path) -> CostPredictor:
    """The active learned cost model under `models_dir/cost`, or the analytic model saying why not."""
    return load_cost_predictor(models_dir / "cost")


@dataclass
class App:
    settings: Settings
    store: SqliteStore
    service: AdvisorService
    metrics: AdvisorMetrics
    server: RunningServer | None = None
    metrics_http: WSGIServer | None = None
    collectors: list[Periodic] = field(default_factory=list)

    @property
    def metrics_port(self) -> int | None:
        return None if self.metrics_http is None else int(self.metrics_http.server_port)

    def start(self) -> int:
        """Start the gRPC server (and the metrics endpoint); return the gRPC port."""
        self.server = start_server(
            self.service, self.metrics, listen=self.settings.listen, max_workers=self.settings.max_workers,
            max_message_mib=self.settings.max_message_mib,
        )
        for collector in self.collectors:
            collector.start()
        if self.settings.metrics_listen:
            host, _, port = self.settings.metrics_listen.rpartition(":")
            self.metrics_http, _ = start_http_server(int(port), host or "127.0.0.1", registry=self.metrics.registry)
        model = self.service.predictor.model
        log.info(
            "serving",
            extra={"listen": self.settings.listen, "port": self.server.port,
                   "metrics_port": self.metrics_port, "data_dir": str(self.settings.data_dir),
                   "cost_model": f"{model.name} {model.version}", "fallback_reason": model.fallback_reason},
        )
        return self.server.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(self.settings.grace_s)
            self.server = None
        for collector in self.collectors:
            collector.stop()
        if self.service.executor is not None:
            self.service.executor.stop()
        if self.metrics_http is not None:
            self.metrics_http.shutdown()
            self.metrics_http.server_close()
            self.metrics_http = None
        self.store.close()
        log.info("stopped")


def build_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> App:
    store = SqliteStore(settings.data_dir / "advisor.sqlite3")
    metrics = AdvisorMetrics(CollectorRegistry())
    predictor = load_predictor(settings.models_dir)
    if predictor.model.fallback_reason:
        log.warning("cost model fallback", extra={"reason": predictor.model.fallback_reason})
    forecaster = load_dirty_forecaster(settings.models_dir / "dirty_rate")
    if forecaster.model.fallback_reason:
        log.warning("dirty-rate forecaster fallback", extra={"reason": forecaster.model.fallback_reason})
    service = AdvisorService(
        store, predictor, metrics, clock=clock, samples_per_entity=settings.samples_per_entity, forecaster=forecaster
    )
    service.attach_executor(
        LibvirtHypervisor,
        limits=ConcurrencyLimits(settings.max_migrations, settings.max_migrations_per_source,
                                 settings.max_migrations_per_target),
        poll_interval_s=settings.poll_interval_s,
    )
    collectors = []
    if settings.prometheus_url:
        queries = PrometheusQueries(
            host_label=settings.prometheus_host_label, vm_label=settings.prometheus_vm_label,
            window=settings.prometheus_window, migration_interface=settings.prometheus_migration_interface,
            max_age_s=settings.prometheus_max_age_s,
        )
        source = PrometheusSource(settings.prometheus_url, queries, timeout_s=settings.prometheus_timeout_s)
        collectors.append(Periodic("prometheus", settings.prometheus_poll_interval_s,
                                   prometheus_collector(source, service, metrics)))
    if settings.dirty_rate_interval_s > 0:
        collectors.append(Periodic("dirty-rate", settings.dirty_rate_interval_s,
                                   dirty_rate_collector(service, LibvirtHypervisor, metrics, readings=1)))
    return App(settings, store, service, metrics, collectors=collectors)


def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    app = build_app(settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    stopping.wait()
    app.stop()
