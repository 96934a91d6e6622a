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
