"""The advisor's own Prometheus metrics, on an injected registry so tests and benchmarks get their own.

Base units throughout (seconds, bytes, ratios), as Prometheus' naming asks; the process collector's `process_*`;
gRPC's under the names of go-grpc-prometheus (`grpc_server_*`, labels grpc_type, grpc_service, grpc_method and
grpc_code in Go's spelling: OK, NotFound, ...), which stock dashboards query. docs/grafana/advisor.json is a
dashboard over them (tests/integration/test_metrics.py checks it against what a server exports).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MIB_BYTES = 1 << 20
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Recommendations waiting for a person: a decision (proposed) or a run (approved), by priority 1 to 5.
BACKLOG_STATES = ("proposed", "approved")
PRIORITIES = (1, 2, 3, 4, 5)
# How many recommendations of each (state, priority) there are, read at each scrape.
Backlog = Callable[[], Mapping[tuple[str, int], int]]


class BacklogCollector(Collector):
    """advisor_review_backlog{state, priority}, read from the store when scraped (so it is never stale), with a
    0 for every state and priority that has none (so an alert sees the backlog empty, not absent)."""

    def __init__(self, read: Backlog) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._read()
        family = GaugeMetricFamily("advisor_review_backlog", "Recommendations waiting for a person: a decision "
                                   "(proposed) or a run (approved), by priority (1 highest)",
                                   labels=["state", "priority"])
        for state in BACKLOG_STATES:
            for priority in PRIORITIES:
                family.add_metric([state, str(priority)], counts.get((state, priority), 0))
        yield family


class LastValue(Collector):
    """A gauge of something that has not happened yet: absent until first set, where a Gauge would say 0 (a
    retraining of 0 s that ended in 1970)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self._name, self._documentation = name, documentation
        self._value: float | None = None
        registry.register(self)

    def set(self, value: float) -> None:
        self._value = float(value)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation)
        if self._value is not None:
            family.add_metric([], self._value)
        yield family


class AdvisorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # prometheus_client would add a `<name>_created` gauge family beside every counter and histogram in the
        # text format: one more series per series, HELP copied, meaning nothing a dashboard uses. (Process-wide:
        # this process exports nothing else.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        ProcessCollector(registry=registry)
        grpc_labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.grpc_started = Counter("grpc_server_started", "RPCs started on the server", grpc_labels,
                                    registry=registry)
        self.grpc_handled = Counter("grpc_server_handled", "RPCs completed on the server, whatever their status",
                                    [*grpc_labels, "grpc_code"], registry=registry)
        self.grpc_seconds = Histogram("grpc_server_handling_seconds", "Time from an RPC's start to its end "
                                      "(a response stream's last message)", grpc_labels, registry=registry,
                                      buckets=LATENCY_BUCKETS)
        self.grpc_received = Counter("grpc_server_msg_received", "Request messages received on the server",
                                     grpc_labels, registry=registry)
        self.grpc_sent = Counter("grpc_server_msg_sent", "Response messages sent by the server", grpc_labels,
                                 registry=registry)
        self.rpc_refused = Counter(
            "advisor_rpc_refused", "Calls refused before they ran: credentials missing or unknown "
            "(UNAUTHENTICATED), a role that may not call (PERMISSION_DENIED), no place (RESOURCE_EXHAUSTED)",
            ["code"], registry=registry)
        self.samples_ingested = Counter(
            "advisor_samples_ingested", "Metric samples accepted, by entity kind", ["kind"], registry=registry
        )
        self.batches_rejected = Counter(
            "advisor_batches_rejected", "Pushed batches rejected whole, by call", ["method"], registry=registry
        )
        self.leader = Gauge("advisor_leader", "1 on the replica that leads (runs the executor and the periodic "
                            "tasks), 0 on the others", registry=registry)
        self.inventory = Gauge("advisor_inventory", "Entities in the inventory", ["kind"], registry=registry)
        self.tracked_series_bytes = Gauge(
            "advisor_sample_store_bytes", "Memory held by the store of recent samples", registry=registry
        )
        self.recommendations = Counter(
            "advisor_recommendations", "Recommendations made, by goal kind", ["goal"], registry=registry
        )
        self.decisions = Counter(
            "advisor_recommendation_decisions", "Approvals and rejections", ["decision"], registry=registry
        )
        self.cost_model = Info("advisor_cost_model", "The cost model in use", registry=registry)
        self.migrations = Counter(
            "advisor_migrations", "Migrations ended, by technique and outcome", ["technique", "outcome"],
            registry=registry,
        )
        self.migration_seconds = Histogram(
            "advisor_migration_duration_seconds", "Total time of successful migrations", ["technique"],
            registry=registry, buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
        )
        self.migration_downtime = Histogram(
            "advisor_migration_downtime_seconds", "Downtime of successful migrations (the guest paused), where "
            "measured", ["technique"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.prediction_ratio = Histogram(
            "advisor_migration_actual_to_predicted", "Actual over predicted median, per quantity", ["quantity"],
            registry=registry, buckets=(0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 4),
        )
        self.migration_remaining_bytes = Gauge(
            "advisor_migration_remaining_bytes", "Memory still to copy, per migrating VM", ["vm"], registry=registry
        )
        self.migration_dirty_rate = Gauge(
            "advisor_migration_dirty_rate_bytes_per_second", "Dirty rate during migration, per VM", ["vm"],
            registry=registry,
        )
        self.migration_transfer_rate = Gauge(
            "advisor_migration_transfer_rate_bytes_per_second", "Transfer rate, per migrating VM", ["vm"],
            registry=registry,
        )
        self.vm_dirty_rate = Gauge(
            "advisor_vm_dirty_rate_bytes_per_second", "Dirty rate measured through the hypervisor, per VM",
            ["vm"], registry=registry,
        )
        self.vm_cpu = Gauge("advisor_vm_cpu_ratio", "Share of its vCPUs a guest uses, per VM", ["vm"],
                            registry=registry)
        self.vm_memory_used = Gauge("advisor_vm_memory_used_bytes", "Memory a guest uses (balloon), per VM", ["vm"],
                                    registry=registry)
        self.vm_disk_write_rate = Gauge("advisor_vm_disk_write_bytes_per_second",
                                        "What a guest writes to its local disks (block statistics), per VM", ["vm"],
                                        registry=registry)
        self.source_up = Gauge("advisor_source_up", "Whether a metrics source answered its last poll (libvirt: "
                               "every hypervisor did)", ["source"], registry=registry)
        self.source_seconds = Histogram("advisor_source_poll_seconds", "Time a poll of a metrics source took",
                                        ["source"], registry=registry)
        self.source_skipped = Counter(
            "advisor_source_skipped", "Pulled values not used, by source and reason: one metric of one series "
            "for Prometheus's (docs/prometheus.md), a whole sample for invalid, unknown_host, unknown_vm",
            ["source", "reason"],
            registry=registry,
        )
        self.database_bytes = Gauge("advisor_database_bytes", "Size of the advisor's database with its write-ahead log",
                                    registry=registry)
        self.hypervisor_up = Gauge("advisor_hypervisor_up", "Whether a host's hypervisor answered the last collection",
                                   ["host"], registry=registry)
        # Per model version and host profile: a promoted version, or hosts of another profile, have their own.
        error_labels = ["technique", "quantity", "model", "model_version", "profile"]
        self.prediction_error = Gauge(
            "advisor_prediction_error_ratio", "Median |predicted - actual| / actual over the last migrations",
            error_labels, registry=registry)
        self.prediction_coverage = Gauge(
            "advisor_prediction_coverage_ratio", "Share of the last migrations inside the predicted interval",
            error_labels, registry=registry)
        self.prediction_drift = Gauge(
            "advisor_prediction_drift", "1 when the running error is beyond the drift threshold: retrain",
            error_labels, registry=registry)
        self.interval_widening = Gauge(
            "advisor_interval_widening_ratio", "How much wider each side of the served p10-p90 is than the model's "
            "own, adapted to recent coverage (1: the model's; below 1: narrower)",
            ["profile", "technique", "regime", "quantity"], registry=registry)
        self.retrains = Counter("advisor_retrains", "Retraining runs in the service, by trigger and result",
                                ["trigger", "result"], registry=registry)
        self.retrain_seconds = LastValue("advisor_retrain_last_duration_seconds", "How long the last retraining ran",
                                         registry)
        self.retrain_finished = LastValue("advisor_retrain_last_finished_timestamp_seconds",
                                          "When the last retraining ended (Unix time)", registry)
        self.model_reloads = Counter("advisor_model_reloads", "Active model changes picked up, by kind and outcome",
                                     ["kind", "outcome"], registry=registry)
        self.migration_iteration = Gauge(
            "advisor_migration_iteration", "Pre-copy round, per migrating VM", ["vm"], registry=registry
        )
        self.expired = Counter("advisor_recommendations_expired", "Recommendations found stale by the periodic check",
                               registry=registry)

    def watch_backlog(self, read: Backlog) -> None:
        """Export the review backlog (BacklogCollector), read through `read` at each scrape."""
        self.registry.register(BacklogCollector(read))
