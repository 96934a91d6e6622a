"""The one place where the advisor's parts are built and wired together: adapters, models, use cases, servers."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from advisor.adapters.databases import backup_database, open_database, restore_database
from advisor.adapters.datadir import DataDirLock, read_addresses
from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.adapters.sql.access import AuditLog, TokenStore
from advisor.adapters.sql.definitions import DefinitionArchive
from advisor.adapters.sql.feed import InventoryFeed, SampleFeed
from advisor.adapters.sql.lease import LeaseTable
from advisor.adapters.sql.samples import SampleArchive
from advisor.adapters.sql.sessions import SessionStore
from advisor.adapters.sql.store import SqlStore
from advisor.adapters.training_job import SubprocessTrainingJob
from advisor.api.auth import AccessInterceptor, CallLimits
from advisor.api.sample_messages import warm_up as warm_up_pushes
from advisor.api.server import RunningServer, Tls, start_server
from advisor.api.servicers import StreamLimits
from advisor.config import Settings, check
from advisor.domain.access import Role, Tokens
from advisor.domain.errors import ConfigError
from advisor.domain.migration import MigrationRecord
from advisor.domain.retraining import RetrainPolicy
from advisor.domain.sessions import Sessions
from advisor.domain.uris import UriPolicy
from advisor.execution.executor import Executor
from advisor.execution.hypervisor import Hypervisor, UriRefused
from advisor.inventory_sharing import InventoryFollower
from advisor.leadership import Leadership
from advisor.metrics import AdvisorMetrics
from advisor.ml.adaptive_intervals import AdaptiveIntervals
from advisor.ml.predictor import CostPredictor
from advisor.model_serving import load_models, models_reloader
from advisor.planning.engine import warm_up as warm_up_engine
from advisor.sample_sharing import EXCHANGE_S, SharedSamples
from advisor.telemetry.collectors import Periodic, sources
from advisor.usecases.bundle import UseCases
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.lifecycle import expire_stale
from advisor.usecases.priority import URGENT
from advisor.usecases.retraining import Retraining
from advisor.web.login import on_loopback
from advisor.web.server import TlsFiles, WebServer
from advisor.web.views import WebSources
from advisor.wiring import QUEUE_POLL_S, queue_taker, wire_core

log = logging.getLogger("advisor")


@dataclass
class App:
    settings: Settings
    lock: DataDirLock
    store: SqlStore
    tokens: TokenStore
    audit: AuditLog
    usecases: UseCases
    estimator: CostEstimator
    metrics: AdvisorMetrics
    executor: Executor
    leadership: Leadership
    access: AccessInterceptor
    tls: Tls | None
    server: RunningServer | None = None
    web: WebServer | None = None  # the listener of /metrics and the web page
    web_sources: WebSources | None = None
    collectors: list[Periodic] = field(default_factory=list)  # on every replica
    leader_tasks: list[Periodic] = field(default_factory=list)  # on the leader only, from its takeover
    interrupt: list[Callable[[], None]] = field(default_factory=list)  # at stop, before the collectors (a retrain)

    @property
    def metrics_port(self) -> int | None:
        return None if self.web is None else self.web.port

    @property
    def predictor(self) -> CostPredictor:
        return self.estimator.predictor

    def start(self) -> int:
        """Claim the leadership (a leader starts the executor, reconciling what a previous run left, and its
        tasks), start the gRPC server, the collectors and the metrics endpoint; return the gRPC port."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def lead(self, *, tasks: bool = True) -> None:
        """Take part in the election; when elected, take over: the executor (reconciling what a previous leader
        left), the reconciler and, with `tasks`, the leader's periodic tasks (a test may drive them itself)."""

        def take_over() -> None:
            self.executor.start(self.leadership.takeover())
            self.usecases.migrations.reconcile()
            for task in self.leader_tasks if tasks else ():
                task.start()
            self.metrics.leader.set(1)

        def step_down() -> None:
            self.metrics.leader.set(0)
            for task in self.leader_tasks if tasks else ():
                task.stop()
            self.executor.stop()

        self.leadership.start(take_over, step_down)

    def _start(self) -> int:
        self.lead()
        self.server = start_server(
            self.usecases, self.metrics, listen=self.settings.listen, access=self.access, limits=call_limits(
                self.settings), tls=self.tls, max_message_mib=self.settings.max_message_mib,
            streams=StreamLimits(self.settings.stream_idle_timeout_s, self.settings.stream_max_duration_s),
        )
        for collector in self.collectors:
            collector.start()
        if self.settings.metrics_listen and self.web_sources is not None:
            self.web = WebServer(self.settings.metrics_listen, self.web_sources, self.metrics.registry,
                                 tls=TlsFiles(self.settings.tls_cert, self.settings.tls_key,
                                              self.settings.tls_client_ca if self.settings.web_client_certificates
                                              else "") if self.tls else None)
        host = self.settings.listen.rpartition(":")[0]
        self.lock.publish({"grpc": f"{host}:{self.server.port}", "tls": self.tls is not None,
                           "metrics": f"{self.settings.metrics_listen.rpartition(':')[0]}:{self.metrics_port}"
                           if self.metrics_port else "",
                           "web_page": self.web is not None and self.web_sources is not None
                           and self.web_sources.page_allowed, "web_scheme": self.web.scheme if self.web else ""})
        model = self.predictor.model
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
            # handlers of calls whose clients gave up still run: the store must not close under them
            if not self.access.drain(self.settings.grace_s + DRAIN_EXTRA_S):
                log.warning("calls still running after the grace period; stopping anyway",
                            extra={"grace_s": self.settings.grace_s})
        for interrupt in self.interrupt:
            interrupt()
        for collector in (*self.collectors, *self.leader_tasks):
            collector.stop()
        self.executor.stop()
        self.leadership.stop()
        if self.web is not None:
            self.web.stop()
            self.web = None
        self.store.close()
        self.lock.release()
        log.info("stopped")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# How long, beyond the grace period, a stop waits for handlers whose clients have gone.
DRAIN_EXTRA_S = 30.0
SAMPLES_SAVED = 16  # newest samples kept per entity across a restart: the forecaster reads the last 60 s
REPO_DIR = Path(__file__).resolve().parent.parent  # where the training job (training/) is run from
RETRAIN_CHECK_S = 30.0  # how often whether a retrain is due is checked


def call_limits(settings: Settings) -> CallLimits:
    return CallLimits(unary=settings.max_concurrent_calls, streams=settings.max_concurrent_streams)


def server_tls(settings: Settings) -> Tls | None:
    """The server's TLS material, read now so that a missing file stops the start with its name."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_client_ca):
        host = settings.listen.rpartition(":")[0]
        if host not in LOOPBACK_HOSTS and not host.startswith("127.") and not settings.allow_plaintext_remote:
            raise ConfigError(f"listen: {settings.listen} is beyond loopback: set tls_cert and tls_key, or "
                              "allow_plaintext_remote = true to listen without TLS on purpose")
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("tls_cert and tls_key go together (tls_client_ca needs both)")

    def read(name: str) -> bytes:
        path = Path(getattr(settings, name))
        try:
            return path.read_bytes()
        except OSError as error:
            raise ConfigError(f"{name}: cannot read {path} ({error.strerror or error})") from None

    return Tls(read("tls_cert"), read("tls_key"), read("tls_client_ca") if settings.tls_client_ca else None)


def guarded(connect: Callable[[str], Hypervisor], uris: UriPolicy) -> Callable[[str], Hypervisor]:
    """`connect`, refusing (without connecting) every URI the allow-list does not name: also hosts stored
    before the list was narrowed."""

    def open_allowed(uri: str) -> Hypervisor:
        if not uris.allows(uri):
            raise UriRefused(f"refused to connect: the hypervisor URI {uris.explain(uri)}")
        return connect(uri)

    return open_allowed


def build_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    connect: Callable[[str], Hypervisor] = LibvirtHypervisor,
) -> App:
    """Every part built from the settings; `connect(uri)` opens a hypervisor connection (libvirt in production).
    Raises DataDirInUse when another advisor serves the data directory, ConfigError for unusable settings."""
    check(settings)
    tls = server_tls(settings)
    roles = {subject: Role.parse(role) for subject, role in settings.tls_client_roles.items()}
    uris = UriPolicy(settings.hypervisor_uri_patterns)
    lock = DataDirLock(settings.data_dir)
    try:
        database = open_database(settings.database_url, settings.data_dir)
    except Exception:
        lock.release()
        raise
    leadership = Leadership(LeaseTable(database) if settings.database_url else None, settings.lease_ttl_s,
                            clock=clock)
    store = SqlStore(database, lambda: leadership.term, replica=leadership.replica if settings.database_url else "")
    tokens, audit = TokenStore(database, clock), AuditLog(database)
    archive, definitions = SampleArchive(database), DefinitionArchive(database)
    metrics = AdvisorMetrics(CollectorRegistry())
    intervals = AdaptiveIntervals()  # the served intervals' online adaptation, kept across model swaps
    predictor, forecaster = load_models(settings.models_dir, metrics, intervals)
    warm_up_engine()  # its compiled loops, as load_models the cost model's: before the first question
    warm_up_pushes()  # and those a push of samples runs: before the first push
    allowed_connect = guarded(connect, uris)
    core = wire_core(settings, store, archive, metrics, predictor, forecaster, allowed_connect, uris, clock, intervals,
                     definitions, leadership, SampleFeed(database) if settings.database_url else None)
    usecases, estimator, outcomes, executor = core.usecases, core.estimator, core.outcomes, core.executor
    samples, ingestion, migrations, freshness = (core.samples, core.usecases.ingestion, core.usecases.migrations,
                                                 core.freshness)

    access = AccessInterceptor(tokens, audit, certificate_roles=roles, limits=call_limits(settings), clock=clock,
                               metrics=metrics)
    metrics.watch_backlog(store.review_backlog)
    leader_tasks = sources(settings, ingestion, allowed_connect, migrations, metrics, clock, core.signs, definitions)

    def keep_house() -> None:
        """Save recent samples, export the database's size. Only the leader saves: it has every replica's samples
        (advisor.sample_sharing), so each is written once, not once by every replica."""
        if leadership.acting():  # in pieces that give way to recommendations and placements (usecases.priority)
            URGENT.in_pieces(samples.export_changed(SAMPLES_SAVED, between=URGENT.give_way), archive.save)
        metrics.database_bytes.set(database.size_bytes())

    def apply_retention() -> None:
        now = clock()
        store.prune_recommendations(settings.retention_recommendations, now - settings.retention_days * 86_400)
        audit.prune(now - settings.audit_retention_days * 86_400)

    collectors = [Periodic("housekeeping", settings.samples_save_interval_s, keep_house, final_run=True),
                  Periodic("models", settings.models_reload_interval_s,
                           models_reloader(settings.models_dir, estimator, metrics, intervals))]
    if isinstance(samples, SharedSamples):  # replicas: what was pushed to one, in the others' memory
        follower = InventoryFollower(InventoryFeed(database), store, core.inventory, samples, leadership.replica,
                                     changed=ingestion.update_gauges, clock=clock)
        collectors += [Periodic("sample feed", EXCHANGE_S, samples.exchange, final_run=True),
                       Periodic("inventory feed", EXCHANGE_S, follower.follow)]
    leader_tasks += [Periodic("retention", settings.samples_save_interval_s, apply_retention),
                     Periodic("expiry", settings.expiry_check_interval_s,
                              lambda: metrics.expired.inc(expire_stale(store, freshness))),
                     Periodic("queued operations", QUEUE_POLL_S, queue_taker(executor, leadership))]
    metrics.leader.set(0)
    interrupt = []
    if settings.retrain_interval_s > 0 or settings.retrain_on_drift:
        job = SubprocessTrainingJob(settings.models_dir, settings.data_dir / "retrain", repo_dir=REPO_DIR,
                                    arguments=settings.retrain_arguments, timeout_s=settings.retrain_timeout_s)
        retraining = Retraining(
            RetrainPolicy(settings.retrain_interval_s, settings.retrain_on_drift, settings.retrain_drift_min_outcomes),
            job, store.outcomes, lambda: any(e.drift for e in outcomes.errors.summary()), metrics, clock,
            time.monotonic)

        def retrain_if_due() -> None:
            retraining.run_if_due()

        leader_tasks.append(Periodic("retraining", min(RETRAIN_CHECK_S, settings.retrain_interval_s or RETRAIN_CHECK_S),
                                   retrain_if_due))
        interrupt.append(job.stop)
    return App(settings, lock, store, tokens, audit, usecases, estimator, metrics, executor, leadership, access, tls,
               collectors=collectors, leader_tasks=leader_tasks, interrupt=interrupt, web_sources=WebSources(
                   usecases, estimator, outcomes.errors, settings.drift_error_ratio, tokens, SessionStore(database),
                   audit, clock, page_allowed=on_loopback(settings.metrics_listen) or tls is not None
                   or settings.web_allow_plaintext_remote))


# How long a thread keeps the GIL while another waits: Python's own 5 ms. 0.5 ms had taken a recommendation's p99
# while samples are pushed from 477 to 191 ms in-process, but with 32 clients (benchmarks/bench_load.py, 2026-12-06,
# side by side in turns, load average 12-15) it served fewer calls: 82 and 91 calls/s against 100 and 98 at 5 ms,
# recommend p50 584 and 553 ms against 442 and 502, 181 and 144 calls over 1 s against 112 and 133.
GIL_SWITCH_INTERVAL_S = 0.005
EXIT_DEPOSED = 3  # the exit status of a replica whose leadership was lost


def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = build_app(settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    while not stopping.wait(1.0) and not app.leadership.deposed.is_set():
        pass
    app.stop()
    if app.leadership.deposed.is_set():  # a supervisor starts it again, as a follower
        sys.exit(EXIT_DEPOSED)


# -- What the command line opens itself, without a server (one serving the same directory sees a change at once)

published = read_addresses  # what the advisor serving a data directory published of itself: pid, addresses
backup, restore = backup_database, restore_database  # the SQLite database of a data directory, to and from a file
open_hypervisor: Callable[[str], Hypervisor] = LibvirtHypervisor  # how the advisor connects to a hypervisor


@dataclass(frozen=True)
class LocalStores:
    tokens: Tokens
    sessions: Sessions
    outcomes: Callable[[float], list[MigrationRecord]]  # the migrations executed, ended since a time


@contextlib.contextmanager
def local_stores(data_dir: Path, *, existing: bool = False, database_url: str = "") -> Iterator[LocalStores]:
    """The stores of the database at `database_url` or else in `data_dir`, made there when missing, unless
    `existing`."""
    database = open_database(database_url, data_dir, existing=existing)
    try:
        yield LocalStores(TokenStore(database, time.time), SessionStore(database), SqlStore(database).outcomes)
    finally:
        database.close()
