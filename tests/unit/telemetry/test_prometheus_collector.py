"""The Prometheus collector: what a poll's outcome becomes in the metrics and the log."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from advisor.adapters.prometheus.source import PollResult, PrometheusSource, SourceHealth
from advisor.metrics import AdvisorMetrics
from advisor.telemetry.collectors import prometheus_collector
from advisor.usecases.ingestion import Ingestion


class _Down:
    def poll(self, hosts: Any, vms: Any) -> PollResult:
        return PollResult([], [], {}, SourceHealth(False, None, "Prometheus at x is unreachable", 1))


class _Ingestion:
    def known_ids(self) -> tuple[list[str], list[str]]:
        return ["h1"], ["vm-1"]


def test_a_failed_poll_is_exported_and_not_logged_twice(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    collect = prometheus_collector(cast(PrometheusSource, _Down()), cast(Ingestion, _Ingestion()),
                                   AdvisorMetrics(registry))
    caplog.set_level(logging.DEBUG)
    collect()
    assert registry.get_sample_value("advisor_source_up", {"source": "prometheus"}) == 0
    assert caplog.records == []  # the source says why when the outage starts; the collector adds nothing
