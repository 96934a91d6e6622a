"""The use cases wired on their store, models and hypervisors (advisor/app.py builds the rest around them), and the
tasks only the leader runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from advisor.adapters.sql.definitions import DefinitionArchive
from advisor.adapters.sql.feed import SampleFeed
from advisor.adapters.sql.samples import SampleArchive
from advisor.adapters.sql.store import SqlStore
from advisor.config import Settings, policies
from advisor.domain import cells
from advisor.domain.automation import Level
from advisor.domain.expiry import ExpiryRules
from advisor.domain.ids import new_id
from advisor.domain.migration import MigrationRecord
from advisor.domain.uris import UriPolicy
from advisor.execution.executor import ConcurrencyLimits, Executor
from advisor.execution.forwarding import ReplicaExecution
from advisor.execution.hypervisor import Hypervisor
from advisor.features.samples import HOST_FIELDS, VM_FIELDS, RecentSamples
from advisor.leadership import Leadership
from advisor.metrics import AdvisorMetrics
from advisor.ml.adaptive_intervals import AdaptiveIntervals
from advisor.ml.calibration import RunningErrors
from advisor.ml.forecast import DirtyRateForecaster
from advisor.ml.predictor import CostPredictor
from advisor.ml.profile_store import OnlineProfiles, ProfileStore
from advisor.sample_sharing import SharedSamples
from advisor.usecases.advice import Advice
from advisor.usecases.automation import Automation, SelfApproval
from advisor.usecases.bundle import UseCases
from advisor.usecases.cluster_plans import Planning
from advisor.usecases.cluster_view import ClusterView
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.evacuation import HostWatch
from advisor.usecases.ingestion import Ingestion
from advisor.usecases.inventory import Inventory
from advisor.usecases.lifecycle import Freshness
from advisor.usecases.liveness import HypervisorSigns
from advisor.usecases.migrations import MigrationOutcomes, Migrations, endpoints
from advisor.usecases.queries import Queries
from advisor.usecases.review import Review
from advisor.usecases.snapshots import Snapshots

log = logging.getLogger("advisor")
QUEUE_POLL_S = 1.0  # how often the leader looks for operations other replicas queued


@dataclass(frozen=True)
class Core:
    """The use cases and the parts beside them that the servers and the periodic tasks need."""

    usecases: UseCases
    estimator: CostEstimator
    outcomes: MigrationOutcomes
    executor: Executor
    samples: RecentSamples
    freshness: Freshness
    signs: HypervisorSigns  # which hypervisors answer the telemetry: how an evacuation knows a host is down
    inventory: Inventory  # what other replicas change is applied to it (advisor.inventory_sharing)


def wire_core(settings: Settings, store: SqlStore, archive: SampleArchive, metrics: AdvisorMetrics,
              predictor: CostPredictor, forecaster: DirtyRateForecaster, allowed_connect: Callable[[str], Hypervisor],
              uris: UriPolicy, clock: Callable[[], float], intervals: AdaptiveIntervals,
              definitions: DefinitionArchive, leadership: Leadership, feed: SampleFeed | None = None) -> Core:
    """The use cases on their store, models and hypervisors, with the decision knobs of the settings; migrations
    run by this replica's executor while it leads, and are queued for the leader otherwise; with a `feed`, samples
    are shared with the other replicas (advisor.sample_sharing)."""
    knobs = policies(settings)
    inventory = Inventory(store)
    cells.check_stored(inventory.hosts().values(), settings.clusters, settings.cluster_label)
    samples = (RecentSamples(settings.samples_per_entity) if feed is None
               else SharedSamples(settings.samples_per_entity, feed, leadership.replica, clock=clock))
    restored = samples.restore(archive.load({"host": len(HOST_FIELDS), "vm": len(VM_FIELDS)}))
    if restored:
        log.info("recent samples restored", extra={"entities": restored})
    estimator = CostEstimator(predictor, forecaster, samples, clock, knobs.technique.cold_shutdown_timeout_ms)
    errors = RunningErrors(drift_error=settings.drift_error_ratio)

    # The one loop of the wiring: the executor reports an ended migration to its observer (outcomes), and a move
    # ending starts the next move of its run, through the executor (migrations). The observer is given that step
    # as a function that looks `migrations` up when a migration ends, long after it is built below.
    def move_ended(record: MigrationRecord) -> None:
        migrations.ended(record)

    outcomes = MigrationOutcomes(store, inventory, metrics, clock, errors, on_ended=move_ended,
                                 profiles=OnlineProfiles(ProfileStore(settings.models_dir / "profiles")),
                                 intervals=intervals)
    executor = Executor(
        store, endpoints(inventory, allowed_connect), outcomes,
        clock=clock, limits=ConcurrencyLimits(settings.max_migrations, settings.max_migrations_per_source,
                                              settings.max_migrations_per_target),
        tuning=knobs.tuning, poll_interval_s=settings.poll_interval_s, predict=estimator.cost,
        tls=knobs.filters.migration_tls, definitions=definitions.definition,
    )
    execution = ReplicaExecution(executor, store, leadership.acting, leadership.leader, clock)
    ingestion = Ingestion(inventory, samples, metrics, clock, uris, clusters=frozenset(settings.clusters),
                          cluster_label=settings.cluster_label)
    automation = Automation(store, inventory, clock, default_level=Level(settings.automation_level),
                            default_threshold=settings.automation_min_benefit_over_cost,
                            cluster_label=settings.cluster_label)
    # VMs no plan may move (opted out of automation, or migrating now) are read each time a snapshot is built.
    snapshots = Snapshots(inventory, samples, clock, max_age_s=settings.snapshot_max_age_s,
                          unmovable=lambda: automation.opted_out() | execution.migrating_vms(),
                          cluster_label=settings.cluster_label)
    freshness = Freshness(inventory, snapshots, estimator, knobs.filters,
                          ExpiryRules(settings.recommendation_max_age_s, settings.expiry_tolerance), clock)
    migrations = Migrations(store, execution, clock, freshness, new_id)
    signs = HypervisorSigns()
    self_approval = SelfApproval(store, clock, migrations.run)
    review = Review(store, metrics, clock, freshness)
    usecases = UseCases(
        ingestion=ingestion,
        queries=Queries(inventory, samples),
        advice=Advice(inventory, estimator, store, metrics, clock=clock, new_id=new_id, filters=knobs.filters,
                      weights=knobs.weights, technique=knobs.technique, automation=automation,
                      self_approval=self_approval, snapshots=snapshots),
        planning=Planning(inventory, snapshots, estimator, store, metrics, clock=clock, new_id=new_id,
                          technique=knobs.technique, plans=knobs.plans, automation=automation,
                          self_approval=self_approval, watch=HostWatch(signs, samples.host_last_time, definitions,
                                                                       settings.evacuate_host_down_after_s, clock)),
        review=review,
        migrations=migrations,
        automation=automation,
        cluster=ClusterView(snapshots.current, review.get, lambda running, n: migrations.page(running, n)[0],
                            lambda host_ids: samples.hosts_latest(host_ids, "cpu_utilization")),
    )

    return Core(usecases, estimator, outcomes, executor, samples, freshness, signs, inventory)


def queue_taker(executor: Executor, leadership: Leadership) -> Callable[[], None]:
    """The leader's periodic look for operations other replicas queued: each taken is logged with this replica."""

    def take() -> None:
        for operation_id in executor.take_queued():
            log.info("queued operation taken by the leader", extra={"operation": operation_id,
                                                                    "replica": leadership.replica,
                                                                    "term": leadership.term})

    return take
