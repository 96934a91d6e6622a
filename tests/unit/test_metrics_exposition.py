"""What /metrics says, in the text format Prometheus scrapes: names as its conventions want them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from advisor.metrics import AdvisorMetrics


def test_each_family_once_counters_with_total_and_no_created_series() -> None:
    registry = CollectorRegistry()
    metrics = AdvisorMetrics(registry)
    metrics.source_skipped.labels("prometheus", "stale").inc(3)
    metrics.source_seconds.labels("prometheus").observe(0.2)
    metrics.expired.inc()
    text = generate_latest(registry).decode()
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names))
    assert not [n for n in names if n.endswith("_created")]
    assert "advisor_source_skipped_total" in text and "advisor_recommendations_expired_total" in text
    for family in families:
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name


def test_help_says_what_is_counted() -> None:
    registry = CollectorRegistry()
    AdvisorMetrics(registry)
    helps = {f.name: f.documentation for f in text_string_to_metric_families(generate_latest(registry).decode())}
    # Prometheus's skips are one metric of one series (a host's CPU), ingestion's a whole sample: not one unit
    assert "one metric of one series" in helps["advisor_source_skipped"]
    assert "whole sample" in helps["advisor_source_skipped"]
    assert "every hypervisor" in helps["advisor_source_up"]  # libvirt's is up only if all answered


def test_what_has_not_happened_yet_is_absent_not_zero() -> None:
    registry = CollectorRegistry()
    metrics = AdvisorMetrics(registry)
    # no retraining yet: not one of 0 s that ended at the Unix epoch
    assert registry.get_sample_value("advisor_retrain_last_finished_timestamp_seconds") is None
    assert registry.get_sample_value("advisor_retrain_last_duration_seconds") is None
    metrics.retrain_seconds.set(7)
    metrics.retrain_finished.set(1_795_656_500)
    assert registry.get_sample_value("advisor_retrain_last_duration_seconds") == 7
    assert registry.get_sample_value("advisor_retrain_last_finished_timestamp_seconds") == 1_795_656_500
    assert "# TYPE advisor_retrain_last_duration_seconds gauge" in generate_latest(registry).decode()
