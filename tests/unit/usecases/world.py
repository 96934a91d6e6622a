"""The use cases wired as advisor/app.py wires them, on the memory adapter (advisor.adapters.memory), a clock
that moves only when told and an executor whose migrations end when the test says (tests.support.doubles): the
use cases tested as values, without a database, threads or sleeping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry

from advisor.adapters.memory import CountingIds, ManualClock, MemoryStore
from advisor.config import Settings, policies
from advisor.domain.automation import Level
from advisor.domain.cluster import InventoryChange
from advisor.domain.expiry import ExpiryRules
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.domain.uris import UriPolicy
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.ml.calibration import RunningErrors
from advisor.ml.forecast import DirtyRateForecaster
from advisor.ml.predictor import AnalyticPredictor, CostPredictor
from advisor.planning.engine import FilterPolicy
from advisor.planning.technique import TechniqueRules
from advisor.usecases.advice import Advice
from advisor.usecases.automation import Automation, SelfApproval
from advisor.usecases.cluster_plans import Planning
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.evacuation import HostWatch
from advisor.usecases.ingestion import Ingestion
from advisor.usecases.inventory import Inventory
from advisor.usecases.lifecycle import Freshness
from advisor.usecases.liveness import HypervisorSigns
from advisor.usecases.migrations import MigrationOutcomes, Migrations
from advisor.usecases.queries import Queries
from advisor.usecases.review import Review
from advisor.usecases.snapshots import Snapshots
from tests.support.doubles import ManualExecutor

CLUSTER_LABEL = "cluster"


def hosts(*names: str, maintenance: str = "", labels: dict[str, dict[str, str]] | None = None) -> tuple[Host, ...]:
    """Hosts of 16 cores and 32 GiB that the fake hypervisor reaches, `labels` by host."""
    return tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}", in_maintenance=h == maintenance,
                      labels=(labels or {}).get(h, {})) for h in names)


@dataclass
class World:
    store: MemoryStore
    clock: ManualClock
    metrics: AdvisorMetrics
    inventory: Inventory
    samples: RecentSamples
    executor: ManualExecutor
    outcomes: MigrationOutcomes
    ingestion: Ingestion
    queries: Queries
    migrations: Migrations
    automation: Automation
    self_approval: SelfApproval
    review: Review
    snapshots: Snapshots
    freshness: Freshness
    advice: Advice
    planning: Planning
    signs: HypervisorSigns
    definitions: KnownDefinitions

    def push(self, hosts: Sequence[Host] = (), vms: Sequence[Vm] = ()) -> None:
        """Inventory in, and the planning snapshot rebuilt now (the advisor rebuilds it in the background)."""
        self.ingestion.push_inventory(InventoryChange(hosts=tuple(hosts), vms=tuple(vms)))
        self.snapshots.fresh()

    def load(self, cpu: dict[str, float], vm_cpu: dict[str, float] | None = None) -> None:
        """CPU samples of hosts (and VMs), now and 30 s ago."""
        now = self.clock()
        self.ingestion.push_samples([HostSample(h, now - age, cpu_utilization=c) for h, c in cpu.items()
                                     for age in (30, 0)],
                                    [VmSample(v, now - age, cpu_utilization=c) for v, c in (vm_cpu or {}).items()
                                     for age in (30, 0)])
        self.snapshots.fresh()


class KnownDefinitions:
    """The VMs whose definition the advisor read (the SQLite archive's `known`, as a set)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def known(self, vm_ids: Iterable[str]) -> set[str]:
        return self.ids & set(vm_ids)


SETTINGS = Settings()
KNOBS = policies(SETTINGS)


def freshness_of(inventory: Inventory, snapshots: Snapshots, estimator: CostEstimator,
                 clock: ManualClock, filters: FilterPolicy = KNOBS.filters) -> Freshness:
    """The expiry check with the settings' defaults (but `filters`): the one place that builds it."""
    return Freshness(inventory, snapshots, estimator, filters,
                     ExpiryRules(SETTINGS.recommendation_max_age_s, SETTINGS.expiry_tolerance), clock)


def advice_and_planning(store: MemoryStore, inventory: Inventory, estimator: CostEstimator, metrics: AdvisorMetrics,
                        clock: ManualClock, ids: CountingIds, automation: Automation, self_approval: SelfApproval,
                        snapshots: Snapshots, technique: TechniqueRules = KNOBS.technique,
                        filters: FilterPolicy = KNOBS.filters, watch: HostWatch | None = None
                        ) -> tuple[Advice, Planning]:
    """Advice and plans with the settings' defaults (but `technique` and `filters`): the one place that builds
    them."""
    advice = Advice(inventory, estimator, store, metrics, clock=clock, new_id=ids, filters=filters,
                    weights=KNOBS.weights, technique=technique, automation=automation,
                    self_approval=self_approval, snapshots=snapshots)
    planning = Planning(inventory, snapshots, estimator, store, metrics, clock=clock, new_id=ids,
                        technique=technique, plans=replace(KNOBS.plans, filters=filters), automation=automation,
                        self_approval=self_approval, watch=watch)
    return advice, planning


def world(*, level: Level = Level.MANUAL, threshold: float = 0.0, store: MemoryStore | None = None,
          technique: TechniqueRules = KNOBS.technique, forecaster: DirtyRateForecaster | None = None,
          filters: FilterPolicy = KNOBS.filters, predictor: CostPredictor | None = None) -> World:
    """Every use case on one memory store (a new one, or `store` as a restarted advisor finds it), the technique
    chosen by `technique`, hosts filtered by `filters`, dirty rates forecast by `forecaster` (none: the newest
    sample's), costs predicted by `predictor` (the analytic model by default)."""
    store = store or MemoryStore()
    clock, ids = ManualClock(), CountingIds("r")
    metrics = AdvisorMetrics(CollectorRegistry())
    inventory = Inventory(store)
    samples = RecentSamples()
    estimator = CostEstimator(predictor or AnalyticPredictor(), forecaster, samples, clock)

    def move_ended(record: MigrationRecord) -> None:  # the loop, as in advisor/app.py
        migrations.ended(record)

    outcomes = MigrationOutcomes(store, inventory, metrics, clock, RunningErrors(), on_ended=move_ended)
    executor = ManualExecutor(store, outcomes, clock)
    automation = Automation(store, inventory, clock, default_level=level, default_threshold=threshold,
                            cluster_label=CLUSTER_LABEL)
    snapshots = Snapshots(inventory, samples, clock, unmovable=lambda: automation.opted_out()
                          | executor.migrating_vms(), cluster_label=CLUSTER_LABEL)  # as in advisor/app.py
    freshness = freshness_of(inventory, snapshots, estimator, clock, filters)
    migrations = Migrations(store, executor, clock, freshness, CountingIds("op"))
    self_approval = SelfApproval(store, clock, migrations.run)
    signs, definitions = HypervisorSigns(), KnownDefinitions()
    watch = HostWatch(signs, samples.host_last_time, definitions, SETTINGS.evacuate_host_down_after_s, clock)
    advice, planning = advice_and_planning(store, inventory, estimator, metrics, clock, ids, automation,
                                           self_approval, snapshots, technique, filters, watch)
    return World(store, clock, metrics, inventory, samples, executor, outcomes,
                 Ingestion(inventory, samples, metrics, clock, UriPolicy(("fake://*",))), Queries(inventory, samples),
                 migrations, automation, self_approval, Review(store, metrics, clock, freshness), snapshots, freshness,
                 advice, planning, signs, definitions)
