"""Settings: defaults, then a TOML file, then ADVISOR_* environment variables, then command-line flags."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.config_ranges import LOG_LEVELS, RANGES, check_address
from advisor.domain.access import Role
from advisor.domain.errors import ConfigError
from advisor.domain.transport import TlsMode
from advisor.domain.uris import UriPattern
from advisor.execution.executor import MonitorTuning
from advisor.planning.engine import AntiChurn, Concurrency, FilterPolicy, PlanSettings, Weights
from advisor.planning.engine.forecast import TUNED
from advisor.planning.technique import TechniqueRules

REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Settings:
    # gRPC address to listen on.
    listen: str = "127.0.0.1:50051"
    # Where the SQLite database lives, and this process's own files (its lock and addresses, retraining runs).
    data_dir: Path = Path(".advisor")
    # The database instead of the SQLite file of data_dir: "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE" (libpq's
    # URL; `?host=/socket/dir` for a unix socket). Empty: SQLite in data_dir.
    database_url: str = ""
    # Replicas on one PostgreSQL elect a leader by a lease of this many seconds, claimed every fifth of it; a
    # leader that cannot renew stops acting at 0.8 of it, and another replica takes over once it expires.
    lease_ttl_s: float = 10.0
    # The clusters (by cluster_label) this replica group serves; empty: all. A host of another cluster pushed to it
    # is refused, naming where it belongs. Each group has a database of its own (several can share one PostgreSQL
    # server), hence its own lease, leader, inventory and recommendations (docs/storage.md, "Cells").
    clusters: tuple[str, ...] = ()
    # Address of the Prometheus metrics endpoint; empty disables it.
    metrics_listen: str = "127.0.0.1:9464"
    # Trained models (versions, cards and the ACTIVE pointer: docs/cost-model.md); the analytic model is used when
    # none loads.
    models_dir: Path = REPO_MODELS_DIR
    log_level: str = "info"
    # "json" (one object per line) or "text".
    log_format: str = "json"
    # Seconds given to calls in flight at shutdown.
    grace_s: float = 10.0
    # Calls served at once: unary calls, and streams (StreamSamples, WatchMigration, reflection), each with places
    # of their own; health checks always have a thread. A call with no place gets RESOURCE_EXHAUSTED at once.
    max_concurrent_calls: int = 48
    max_concurrent_streams: int = 8
    # A StreamSamples call that sends nothing for this long, or lasts longer than the maximum, is ended.
    stream_idle_timeout_s: float = 30.0
    stream_max_duration_s: float = 3600.0
    # Largest gRPC message accepted; larger ones get RESOURCE_EXHAUSTED from gRPC itself.
    max_message_mib: int = 16

    # -- access --
    # TLS: the server's certificate and key (PEM); with tls_client_ca, clients must present a certificate signed
    # by it (mutual TLS), and tls_client_roles maps a certificate's subject ("CN=name") to a role.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    tls_client_roles: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # gRPC: listening beyond loopback without TLS is refused unless this is true.
    allow_plaintext_remote: bool = False
    # The web page on `metrics_listen` beyond loopback without TLS (its login code and session secret in plain
    # text on the network) is refused (/metrics still served) unless this is true.
    web_allow_plaintext_remote: bool = False
    # The web listener (page and /metrics) asks for client certificates signed by tls_client_ca (mutual TLS), as
    # gRPC does; a client without one is refused at the handshake. Needs tls_cert, tls_key and tls_client_ca.
    web_client_certificates: bool = False
    # Hypervisor URIs a pushed host may name (advisor.domain.uris): patterns of scheme, host, path and query
    # parameters; any other URI is refused and never connected to.
    hypervisor_uri_patterns: tuple[str, ...] = ("qemu+tls://*/system", "qemu+tcp://*/system", "qemu+ssh://*/system")
    # Encryption of the migration data (guest memory) between hosts, libvirt's VIR_MIGRATE_TLS: "off" (plain
    # TCP), "preferred" (TLS where both hosts offer it, Host.migration_tls, else plain TCP, said in the move's
    # reasons) or "required" (a host without TLS is ruled out as a target, and a move to or from one is refused).
    migration_tls: str = "preferred"
    # Retention: recommendations (with their assessments) beyond this count or age are deleted, oldest first,
    # unless a migration of theirs is under way; audit entries older than audit_retention_days.
    retention_recommendations: int = 10_000
    retention_days: float = 30.0
    audit_retention_days: float = 365.0
    # Recent samples are saved this often (and at shutdown), so that a restart keeps them.
    samples_save_interval_s: float = 60.0
    # A newly activated (promoted) model is picked up within this many seconds, without a restart.
    models_reload_interval_s: float = 5.0
    # Prediction drift: the median error of the last 50 migrations of a technique beyond this ratio.
    drift_error_ratio: float = 0.5
    # Retraining in the service (through the promotion gate; a promoted version is then served by the reloader):
    # every retrain_interval_s seconds (0: never on a schedule), and/or when the prediction error drifts once
    # retrain_drift_min_outcomes measured outcomes came since the last run. The job is `python -m
    # training.train_cost` run from the repository (retrain_arguments added, e.g. "--snu-sample,0.1"), killed
    # after retrain_timeout_s; the outcomes it is given and its output are kept in data_dir/retrain.
    retrain_interval_s: float = 0.0
    retrain_on_drift: bool = False
    retrain_drift_min_outcomes: int = 10
    retrain_arguments: tuple[str, ...] = ()
    retrain_timeout_s: float = 3600.0
    # Recent samples kept per host and per VM.
    samples_per_entity: int = 120
    # Migrations at once in the cluster, out of one host, into one host (KubeVirt's defaults).
    max_migrations: int = 5
    max_migrations_per_source: int = 2
    max_migrations_per_target: int = 2
    # Seconds between polls of a running migration (Nova polls every 0.5 s).
    poll_interval_s: float = 0.5
    # Prometheus to pull host and guest metrics from (docs/prometheus.md); empty disables.
    prometheus_url: str = ""
    prometheus_poll_interval_s: float = 15.0
    prometheus_timeout_s: float = 10.0
    # Samples older than this are stale (their exporter stopped) and ignored.
    prometheus_max_age_s: float = 120.0
    # Labels that name the host (node exporter) and the guest (libvirt exporter) in the series.
    prometheus_host_label: str = "instance"
    prometheus_vm_label: str = "domain"
    prometheus_window: str = "2m"
    # Network device of the migration network; empty sums every device but loopback and virtual ones.
    prometheus_migration_interface: str = ""
    # Seconds between dirty-rate measurements of every guest through its host's hypervisor; 0 disables. Each reads
    # page samples for 1 s (QEMU hashes 512 sampled pages per GiB; the guest is not paused): the forecaster needs
    # two or more readings at least 10 s apart within its 60 s window, so 15 s gives it four.
    dirty_rate_interval_s: float = 15.0
    # A host is down, for an evacuation, when neither its hypervisor (read by the collector above) nor any sample
    # of it has said it is alive for this long (advisor.domain.evacuation.judge_host): four readings missed.
    evacuate_host_down_after_s: float = 60.0

    # -- decision knobs (passed into the pure planning and monitoring functions) --
    # Placement: vCPUs per core and memory overcommit allowed on a target, the CPU load a target may reach after
    # a move, the weights of CPU and memory in the score (the larger weighted load; lower is better), and the bonus
    # of an affinity partner. The same filters hold for plans; the weights are those of single-VM placement.
    placement_cpu_allocation_ratio: float = 4.0
    placement_memory_allocation_ratio: float = 1.0
    placement_max_cpu_after: float = 0.85
    placement_cpu_weight: float = 1.0
    placement_memory_weight: float = 1.0
    placement_affinity_bonus: float = 0.2
    # Technique choice: rank by median + risk x (p90 - median); without a deadline, abort a pre-copy after
    # deadline_slack x its pessimistic time (at least deadline_floor_ms); switch a pre-copy to post-copy (where
    # allowed) after postcopy_safety_factor x its pessimistic time.
    technique_risk: float = 0.5
    technique_deadline_slack: float = 3.0
    technique_deadline_floor_ms: float = 30_000.0
    technique_postcopy_safety_factor: float = 1.5
    # When no technique meets every limit and post-copy is not allowed: "likeliest" (most likely to converge),
    # "downtime" (lowest p90 downtime) or "autoconverge".
    technique_fallback: str = "likeliest"
    # Post-copy's price: a millisecond of its exposure (a failure of either host or the link then loses the guest)
    # counts as this many milliseconds of guest pause, beside the time the guest loses to page faults; clusters
    # (by cluster_label) where post-copy is never chosen (a VM forbids it with the label advisor.postcopy=forbidden).
    technique_postcopy_exposure_weight: float = 0.05
    technique_postcopy_forbidden_clusters: tuple[str, ...] = ()
    # Cold migration gives a guest this long to shut down by itself before forcing it off (Nova's shutdown_timeout);
    # its predicted cost uses the same.
    technique_cold_shutdown_timeout_s: float = 60.0
    # Plans: rebalance until every host is within this of the mean load; leave a VM that moved in the last
    # plan_pin_s seconds alone in rebalance and consolidate plans (no ping-pong across plans).
    plan_rebalance_tolerance: float = 0.10
    plan_pin_s: float = 1800.0
    # The advisor policy's settings as cross-validation chose them in the simulator (TUNED,
    # advisor/planning/engine/forecast.py; docs/simulation-advisor.md), so serving plans as the simulator measured:
    # rebalance relieves hosts whose forecast CPU load is above plan_rebalance_hot, ranking moves by the SLA time
    # they save over plan_rebalance_horizon_s against their migration (0: by load relieved per second of migration,
    # on the latest samples, as before); a plan's target may reach plan_max_cpu_after; a VM's cooldown grows by
    # plan_cooldown_per_move_s per second of its last move.
    plan_rebalance_hot: float = TUNED.hot
    plan_rebalance_horizon_s: float = TUNED.horizon_s
    plan_max_cpu_after: float = TUNED.headroom
    plan_cooldown_per_move_s: float = TUNED.cooldown_per_move_s
    # The cluster snapshot single-VM recommendations rank hosts on is rebuilt when the inventory changes or it
    # is older than this (in the background: a recommendation never waits for it); plans take a fresh one.
    snapshot_max_age_s: float = 5.0
    # Monitor: judge pre-copy from this round on, switch or abort after this many rounds without progress, raise the
    # allowed downtime to its limit in this many steps.
    monitor_judge_from_round: int = 3
    monitor_stall_rounds: int = 3
    monitor_downtime_steps: int = 4

    # -- review and automation --
    # The automation level of clusters an admin has not set (SetAutomation): manual (every move needs approval),
    # partial (new VMs are placed automatically, migrations need approval) or full (the advisor approves and
    # runs its own recommendations); and the least benefit over cost a plan's move must promise to be proposed.
    automation_level: str = "manual"
    automation_min_benefit_over_cost: float = 0.0
    # The host label that names a host's cluster (hosts without it are in "default").
    cluster_label: str = "cluster"
    # A recommendation expires when older than this, or when its move's cost predicted now falls outside its
    # interval widened by expiry_tolerance (and on the other rules of advisor/domain/expiry.py); checked right
    # before each move starts and every expiry_check_interval_s seconds.
    recommendation_max_age_s: float = 3600.0
    expiry_tolerance: float = 0.25
    expiry_check_interval_s: float = 60.0


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Variables the client commands and the lab's tests read; they are not server settings.
CLIENT_ENVIRONMENT = frozenset({"ADVISOR_SERVER", "ADVISOR_TOKEN", "ADVISOR_LAB_TEST_ROOT",
                                "ADVISOR_LAB_COLLECT_TEST_ROOT"})


def _coerce(name: str, raw: Any, origin: str) -> Any:
    default = getattr(Settings(), name)
    kind = type(default)

    def wrong() -> ConfigError:
        return ConfigError(f"{origin}: {name} must be a {_KIND_NAMES.get(kind, kind.__name__)}, got {raw!r}")

    try:
        if isinstance(default, Path):
            return Path(str(raw))
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise wrong()
            return text in ("true", "1", "yes")
        if kind is float:
            if isinstance(raw, bool):
                raise wrong()
            return float(raw)
        if kind is int:
            if isinstance(raw, bool | float) or (isinstance(raw, str) and not raw.strip().lstrip("-").isdigit()):
                raise wrong()
            return int(raw)
        if kind is tuple:
            items = raw if isinstance(raw, list) else [p for p in str(raw).split(",") if p.strip()]
            if not all(isinstance(i, str) for i in items):
                raise wrong()
            return tuple(i.strip() for i in items)
        if isinstance(default, Mapping):
            table = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                raise wrong()
            return {str(k): v for k, v in table.items()}
        if not isinstance(raw, str):
            raise wrong()
        return raw
    except (TypeError, ValueError):
        raise wrong() from None


_KIND_NAMES = {bool: "boolean", int: "whole number", float: "number", str: "string", tuple: "list of strings",
               dict: "table (JSON object in the environment)"}


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            table = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{config_file}: {error}") from None
        if "advisor" in table:
            # Settings are read from [advisor] alone then: anything beside it would be silently ignored.
            others = sorted(set(table) - {"advisor"})
            if others or not isinstance(table["advisor"], dict):
                raise ConfigError(f"{config_file}: with an [advisor] table every setting goes in it; outside it: "
                                  f"{', '.join(others) or 'advisor is not a table'}")
            table = table["advisor"]
        for key, raw in table.items():
            if key not in _FIELDS:
                raise ConfigError(f"{config_file}: unknown setting {key!r} (known: {', '.join(_FIELDS)})")
            values[key] = _coerce(key, raw, str(config_file))
    for key, raw in (env or {}).items():
        if key.startswith("ADVISOR_") and key not in CLIENT_ENVIRONMENT:
            name = key.removeprefix("ADVISOR_").lower()
            if name not in _FIELDS:
                raise ConfigError(f"environment: unknown setting {key}")
            values[name] = _coerce(name, raw, f"environment {key}")
    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _coerce(key, raw, f"--{key.replace('_', '-')}")
    settings = Settings(**values)
    check(settings)
    return settings


@dataclass(frozen=True)
class Policies:
    """The decision knobs of the settings, each rule's as the one type that rule takes."""

    filters: FilterPolicy  # which hosts may take a VM: everywhere (RecommendTarget, PlaceVm, plans, the check)
    weights: Weights  # how single-VM placement ranks the hosts that may (RecommendTarget, PlaceVm)
    technique: TechniqueRules
    plans: PlanSettings  # with the same filters but the CPU load a target may reach (plan_max_cpu_after)
    tuning: MonitorTuning


def policies(settings: Settings) -> Policies:
    filters = FilterPolicy(cpu_allocation_ratio=settings.placement_cpu_allocation_ratio,
                           memory_allocation_ratio=settings.placement_memory_allocation_ratio,
                           max_cpu_after=settings.placement_max_cpu_after,
                           migration_tls=TlsMode.parse(settings.migration_tls))
    return Policies(
        filters=filters,
        weights=Weights(cpu=settings.placement_cpu_weight, memory=settings.placement_memory_weight,
                        affinity=settings.placement_affinity_bonus),
        technique=TechniqueRules(risk=settings.technique_risk, deadline_slack=settings.technique_deadline_slack,
                                 deadline_floor_ms=settings.technique_deadline_floor_ms,
                                 postcopy_safety_factor=settings.technique_postcopy_safety_factor,
                                 fallback=settings.technique_fallback,
                                 postcopy_exposure_weight=settings.technique_postcopy_exposure_weight,
                                 postcopy_forbidden_clusters=frozenset(settings.technique_postcopy_forbidden_clusters),
                                 cold_shutdown_timeout_ms=settings.technique_cold_shutdown_timeout_s * 1000),
        plans=PlanSettings(filters=dataclasses.replace(filters, max_cpu_after=settings.plan_max_cpu_after),
                           churn=AntiChurn(cooldown_s=settings.plan_pin_s,
                                           cooldown_per_move_s=settings.plan_cooldown_per_move_s),
                           concurrency=Concurrency(settings.max_migrations_per_source,
                                                   settings.max_migrations_per_target, settings.max_migrations),
                           rebalance_tolerance=settings.plan_rebalance_tolerance,
                           rebalance_hot=settings.plan_rebalance_hot,
                           rebalance_horizon_s=settings.plan_rebalance_horizon_s,
                           rebalance_forecast=TUNED.forecast if settings.plan_rebalance_horizon_s > 0 else None,
                           postcopy_forbidden_clusters=frozenset(settings.technique_postcopy_forbidden_clusters)),
        tuning=MonitorTuning(judge_from_round=settings.monitor_judge_from_round,
                             stall_rounds=settings.monitor_stall_rounds,
                             downtime_steps=settings.monitor_downtime_steps),
    )


def check(settings: Settings) -> None:
    """What the types alone do not say: ranges, and values other parts must understand."""
    if settings.database_url and not settings.database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("database_url must be empty (SQLite in data_dir) or a postgresql:// URL, got "
                          f"{settings.database_url.partition('://')[0][:20]!r}://...")
    if settings.log_format not in ("json", "text"):
        raise ConfigError(f"log_format must be 'json' or 'text', got {settings.log_format!r}")
    for name, allowed in RANGES.items():
        value = getattr(settings, name)
        if value not in allowed:
            raise ConfigError(f"{name} must be {allowed} (got {value})")
    for name in ("listen", "metrics_listen"):
        address = getattr(settings, name)
        if name == "listen" or address:
            check_address(name, address)
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"log_level must be {', '.join(LOG_LEVELS)}, got {settings.log_level!r}")
    if settings.technique_fallback not in ("likeliest", "downtime", "autoconverge"):
        raise ConfigError("technique_fallback must be likeliest, downtime or autoconverge, got "
                          f"{settings.technique_fallback!r}")
    try:
        TlsMode.parse(settings.migration_tls)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if settings.web_client_certificates and not (settings.tls_cert and settings.tls_key and settings.tls_client_ca):
        raise ConfigError("web_client_certificates needs tls_cert, tls_key and tls_client_ca (the CA that signs "
                          "the clients' certificates)")
    if settings.automation_level not in ("manual", "partial", "full"):
        raise ConfigError(f"automation_level must be manual, partial or full, got {settings.automation_level!r}")
    for pattern in settings.hypervisor_uri_patterns:
        try:
            UriPattern.parse(pattern)
        except ValueError as error:
            raise ConfigError(f"hypervisor_uri_patterns: {error}") from None
    for subject, role in settings.tls_client_roles.items():
        try:
            Role.parse(role)
        except ValueError as error:
            raise ConfigError(f"tls_client_roles[{subject!r}]: {error}") from None
