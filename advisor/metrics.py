"""The advisor's own Prometheus metrics, on an injected registry so tests and benchmarks get their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class AdvisorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rpc_requests = Counter(
            "advisor_rpc_requests", "gRPC calls handled, by method and status code", ["method", "code"],
            registry=registry,
        )
        self.rpc_seconds = Histogram(
            "advisor_rpc_duration_seconds", "gRPC call latency", ["method"], registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.samples_ingested = Counter(
            "advisor_samples_ingested", "Metric samples accepted, by entity kind", ["kind"], registry=registry
        )
        self.batches_rejected = Counter(
            "advisor_batches_rejected", "Pushed batches rejected whole, by call", ["method"], registry=registry
        )
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
        self.prediction_ratio = Histogram(
            "advisor_migration_actual_to_predicted", "Actual over predicted median, per quantity", ["quantity"],
            registry=registry, buckets=(0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 4),
        )
        self.migration_remaining_mib = Gauge(
            "advisor_migration_remaining_mib", "Memory still to copy, per migrating VM", ["vm"], registry=registry
        )
        self.migration_dirty_rate = Gauge(
            "advisor_migration_dirty_rate_mib_s", "Dirty rate during migration, per VM", ["vm"], registry=registry
        )
        self.migration_transfer_rate = Gauge(
            "advisor_migration_transfer_rate_mib_s", "Transfer rate, per migrating VM", ["vm"], registry=registry
        )
        self.vm_dirty_rate = Gauge(
            "advisor_vm_dirty_rate_mib_s", "Dirty rate measured through the hypervisor (page sampling), per VM",
            ["vm"], registry=registry,
        )
        self.vm_cpu = Gauge("advisor_vm_cpu_ratio", "Share of its vCPUs a guest uses, per VM", ["vm"],
                            registry=registry)
        self.vm_memory_used = Gauge("advisor_vm_memory_used_mib", "Memory a guest uses (balloon), per VM", ["vm"],
                                    registry=registry)
        self.source_up = Gauge("advisor_source_up", "Whether a metrics source answered its last poll", ["source"],
                               registry=registry)
        self.source_seconds = Histogram("advisor_source_poll_seconds", "Time a poll of a metrics source took",
                                        ["source"], registry=registry)
        self.source_skipped = Counter(
            "advisor_source_skipped", "Pulled samples not used, by source and reason", ["source", "reason"],
            registry=registry,
        )
        self.database_bytes = Gauge("advisor_database_bytes", "Size of the advisor's database with its write-ahead log",
                                    registry=registry)
        self.hypervisor_up = Gauge("advisor_hypervisor_up", "Whether a host's hypervisor answered the last collection",
                                   ["host"], registry=registry)
        self.prediction_error = Gauge(
            "advisor_prediction_error_ratio", "Median |predicted - actual| / actual over the last migrations",
            ["technique", "quantity"], registry=registry)
        self.prediction_coverage = Gauge(
            "advisor_prediction_coverage_ratio", "Share of the last migrations inside the predicted interval",
            ["technique", "quantity"], registry=registry)
        self.prediction_drift = Gauge(
            "advisor_prediction_drift", "1 when the running error is beyond the drift threshold: retrain",
            ["technique", "quantity"], registry=registry)
        self.interval_widening = Gauge(
            "advisor_interval_widening_ratio", "How much wider each side of the served p10-p90 is than the model's "
            "own, adapted to recent coverage (1: the model's; below 1: narrower)",
            ["profile", "technique", "regime", "quantity"], registry=registry)
        self.retrains = Counter("advisor_retrains", "Retraining runs in the service, by trigger and result",
                                ["trigger", "result"], registry=registry)
        self.retrain_seconds = Gauge("advisor_retrain_last_duration_seconds", "How long the last retraining ran",
                                     registry=registry)
        self.retrain_finished = Gauge("advisor_retrain_last_finished_timestamp_seconds",
                                      "When the last retraining ended (Unix time)", registry=registry)
        self.model_reloads = Counter("advisor_model_reloads", "Active model changes picked up, by kind and outcome",
                                     ["kind", "outcome"], registry=registry)
        self.migration_iteration = Gauge(
            "advisor_migration_iteration", "Pre-copy round, per migrating VM", ["vm"], registry=registry
        )
        self.expired = Counter("advisor_recommendations_expired", "Recommendations found stale by the periodic check",
                               registry=registry)
