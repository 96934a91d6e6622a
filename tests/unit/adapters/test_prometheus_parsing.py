"""The pure half of the Prometheus source: query results (the JSON `result` lists of /api/v1/query and
/api/v1/query_range, as recorded from Prometheus 2.42) to samples, and the configuration of the PromQL."""

from __future__ import annotations

import math
from typing import Any

import pytest

from advisor.adapters.prometheus.convert import convert, convert_range
from advisor.adapters.prometheus.queries import BYTES_TO_MIB, METRICS, MS_TO_S, MetricQuery, PrometheusQueries
from advisor.adapters.prometheus.source import PrometheusSource
from advisor.domain.model import HostSample, VmSample

NOW = 1_795_656_500.0
EVAL = NOW  # instant queries are evaluated at the source's clock


def entry(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [EVAL, value]}


def ages(ts: float, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [EVAL, repr(ts)]}


QUERIES = PrometheusQueries(host_ids={"10.0.0.1:9100": "host-a"})


def test_default_promql_is_rendered_with_labels_window_and_devices() -> None:
    rendered = PrometheusQueries().rendered()
    assert set(rendered) == {name for name, _, _ in METRICS} - {"host_power", "vm_resident"}  # off by default
    assert rendered["host_cpu"].expr == '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[2m]))'
    assert rendered["host_network_rx"].expr == (
        'sum by (instance) (rate(node_network_receive_bytes_total{device!~"lo|veth.*|vnet.*|tap.*|virbr.*|docker.*'
        '|cni.*|flannel.*"}[2m]))'
    )
    assert rendered["vm_cpu"].expr == (
        "sum by (domain) (rate(libvirt_domain_info_cpu_time_seconds_total{}[2m]))"
        " / max by (domain) (libvirt_domain_info_virtual_cpus{})"
    )
    assert rendered["vm_dirty_rate"].label == "vm" and rendered["vm_memory"].label == "domain"
    # history narrows every selector to one VM
    assert PrometheusQueries().render("vm_cpu", select='domain="vm-1"').expr == (
        'sum by (domain) (rate(libvirt_domain_info_cpu_time_seconds_total{domain="vm-1"}[2m]))'
        ' / max by (domain) (libvirt_domain_info_virtual_cpus{domain="vm-1"})'
    )
    custom = PrometheusQueries(host_label="host", window="5m", migration_interface="bond0.42").rendered()
    assert custom["host_network_tx"].expr == (
        'sum by (host) (rate(node_network_transmit_bytes_total{device="bond0.42"}[5m]))'
    )
    assert custom["host_cpu"].label == "host"


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ValueError, match=r"host_cpu: unknown placeholder \$hots"):
        PrometheusQueries(host_cpu=MetricQuery("up{instance=~$hots}"))
    with pytest.raises(ValueError, match=r"vm_memory\.scale"):
        PrometheusQueries(vm_memory=MetricQuery("x", scale=0.0))
    with pytest.raises(ValueError, match="max_age_s"):
        PrometheusQueries(max_age_s=0)
    # `$$` is a literal dollar, e.g. in label_replace
    q = PrometheusQueries(vm_dirty_rate=MetricQuery('label_replace(d, "vm", "$$1", "name", "(.*)")', label="vm"))
    assert q.rendered()["vm_dirty_rate"].expr == 'label_replace(d, "vm", "$1", "name", "(.*)")'
    with pytest.raises(ValueError, match="timeout_s"):
        PrometheusSource("http://127.0.0.1:9", timeout_s=0)


@pytest.mark.parametrize(("raw", "host"), [
    ("compute-1:9100", "compute-1"), ("compute-1", "compute-1"), ("10.0.0.5:9100", "10.0.0.5"),
    ("[fd00::5]:9100", "fd00::5"), ("fd00::5", "fd00::5"), ("10.0.0.1:9100", "host-a"), ("host:abc", "host:abc"),
])
def test_host_ids_from_the_instance_label(raw: str, host: str) -> None:
    assert QUERIES.host_id(raw) == host
    assert PrometheusQueries(strip_port=False).host_id("compute-1:9100") == "compute-1:9100"


def test_a_recorded_poll_converts_to_samples() -> None:
    results = {
        "host_cpu": [entry("0.25", instance="10.0.0.1:9100"), entry("0.6000000000000001", instance="compute-2:9100")],
        "host_memory": [entry("4294967296", instance="10.0.0.1:9100")],
        "host_network_rx": [entry("15728640", instance="10.0.0.1:9100")],
        "host_network_tx": [],
        "vm_cpu": [entry("0.5", domain="vm-1")],
        "vm_memory": [entry("2147483648", domain="vm-1"), entry("1073741824", domain="vm-2")],
        "vm_dirty_rate": [entry("50331648", vm="vm-1"), entry("2621440", vm="vm-2")],  # bytes/s
    }
    freshness = {
        "host_cpu": [ages(NOW - 10, instance="10.0.0.1:9100"), ages(NOW - 12, instance="compute-2:9100")],
        "vm_memory": [ages(NOW - 30, domain="vm-1"), ages(NOW - 15, domain="vm-2")],
    }
    out = convert(results, freshness, QUERIES, ["host-a", "compute-2", "host-c"], {"vm-1", "vm-2"}, NOW)
    assert out.host_samples == [
        HostSample("compute-2", NOW - 12, cpu_utilization=0.6000000000000001),
        # Time: the newest raw sample (cpu); metrics without a freshness query count as evaluated now.
        HostSample("host-a", EVAL, 0.25, 4096.0, 15.0, None),
    ]
    assert out.vm_samples == [VmSample("vm-1", EVAL, 0.5, 2048.0, 48.0), VmSample("vm-2", EVAL, None, 1024.0, 2.5)]
    assert out.skipped == {}
    assert out.missing == {"host_cpu": 1, "host_memory": 2, "host_network_rx": 2, "host_network_tx": 3,
                           "vm_cpu": 1}


def test_what_real_deployments_send_is_skipped_and_counted() -> None:
    results = {
        "host_cpu": [
            entry("0.3", instance="10.0.0.1:9100"),
            entry("0.3", instance="10.0.0.1:9100"),  # a second series for the same host
            entry("0.2", instance="unknown:9100"),
            entry("0.2", job="node"),  # the query aggregated the host label away
            {"metric": {"instance": "compute-2:9100"}, "value": [EVAL]},  # garbled
            {"value": [EVAL, "0.1"]},
        ],
        "host_memory": [entry("NaN", instance="10.0.0.1:9100"), entry("+Inf", instance="compute-2:9100")],
        "host_network_rx": [entry("-Inf", instance="compute-2:9100"), entry("not a number", instance="10.0.0.1:9100")],
        "vm_cpu": [entry("0.4", domain="vm-1"), entry("0.4", domain="vm-old")],
        "vm_memory": [entry("1073741824", domain="vm-1")],
        "vm_dirty_rate": [entry("12582912", vm="vm-1"), entry("1048576", vm="vm-2")],
    }
    freshness = {
        "vm_memory": [ages(NOW - 121, domain="vm-1")],  # older than max_age_s = 120: stale
        "vm_dirty_rate": [ages(NOW - 119, vm="vm-1"), ages(NOW - 500, vm="vm-2")],
        "vm_cpu": [ages(math.nan, domain="vm-1")],  # a nonsense age is no age: the value is kept
    }
    out = convert(results, freshness, QUERIES, ["host-a", "compute-2"], ["vm-1", "vm-2"], NOW)
    assert out.skipped == {"duplicate": 1, "unknown_host": 1, "unlabelled": 1, "malformed": 3, "non_finite": 3,
                           "unknown_vm": 1, "stale": 2}
    assert out.host_samples == [HostSample("host-a", EVAL, cpu_utilization=0.3)]
    # vm-1: cpu has no usable age, so the sample is as of the evaluation time
    assert out.vm_samples == [VmSample("vm-1", EVAL, cpu_utilization=0.4, dirty_rate_mib_s=12.0)]


def test_ratios_are_clamped_a_little_and_implausible_values_dropped() -> None:
    results = {
        "host_cpu": [entry("1.03", instance="a:1"), entry("-0.01", instance="b:1"), entry("3.5", instance="c:1")],
        # a memory query forgot to subtract, or its unit is wrong: beyond 64 TiB
        "host_memory": [entry("1e20", instance="a:1"), entry("-5", instance="b:1")],
        "vm_cpu": [entry("1.2", domain="v")],  # CPU time in ms read as seconds would be far above
    }
    out = convert(results, {}, PrometheusQueries(), ["a", "b", "c"], ["v"], NOW)
    assert [(s.host_id, s.cpu_utilization) for s in out.host_samples] == [("a", 1.0), ("b", 0.0)]
    assert out.skipped == {"out_of_range": 4}
    assert out.vm_samples == []


def test_units_are_converted_by_each_querys_scale() -> None:
    queries = PrometheusQueries(
        vm_cpu=MetricQuery("rate(cpu_ms[$window])", scale=MS_TO_S),  # an exporter counting milliseconds
        vm_memory=MetricQuery("mem_kib * 1024", scale=BYTES_TO_MIB),
        vm_dirty_rate=MetricQuery("dirty_pages_per_second", scale=4096 * BYTES_TO_MIB, label="domain"),
        host_power=MetricQuery("max by ($host) (watts)"),
        vm_resident=MetricQuery("max by ($vm) (libvirt_domain_memory_stats_rss_bytes{$select})", scale=BYTES_TO_MIB),
    )
    results = {"vm_cpu": [entry("250", domain="v")], "vm_memory": [entry("536870912", domain="v")],
               "vm_dirty_rate": [entry("5632", domain="v")], "host_power": [entry("312.5", instance="h:9290")],
               "vm_resident": [entry("3221225472", domain="v")]}
    out = convert(results, {}, queries, ["h"], ["v"], NOW)
    assert out.vm_samples == [VmSample("v", EVAL, 0.25, 512.0, 22.0, resident_memory_mib=3072.0)]
    assert out.host_samples == [HostSample("h", EVAL, power_w=312.5)]


def test_vm_ids_map_both_ways() -> None:
    queries = PrometheusQueries(vm_ids={"instance-0000002a": "web-1"})
    out = convert({"vm_memory": [entry("1048576", domain="instance-0000002a")]}, {}, queries, [], ["web-1"], NOW)
    assert out.vm_samples == [VmSample("web-1", EVAL, memory_used_mib=1.0)]
    assert queries.vm_label_value("web-1") == "instance-0000002a"
    assert queries.vm_label_value("db-1") == "db-1"


def test_a_recorded_range_result_converts_to_points() -> None:
    result = [
        {"metric": {"domain": "vm-1"}, "values": [[NOW - 30, "2147483648"], [NOW - 15, "NaN"], [NOW, "1073741824"]]},
        {"metric": {"domain": "vm-1", "instance": "other:9177"}, "values": [[NOW, "1"], [NOW + 15, "1048576"]]},
        {"metric": {}, "values": "garbage"},
    ]
    assert convert_range("vm_memory", result, PrometheusQueries()) == [
        (NOW - 30, 2048.0), (NOW, 1024.0), (NOW + 15, 1.0),
    ]
    assert convert_range("vm_cpu", [{"metric": {}, "values": [[NOW, "1.01"], [NOW + 15, "7"]]}],
                         PrometheusQueries()) == [(NOW, 1.0)]


@pytest.mark.parametrize(("value", "age", "reason"), [
    (True, None, "malformed"),  # JSON true is no number (float() would read it as 1)
    (False, None, "malformed"),
    (None, None, "malformed"),
    ("0.5", NOW + 3600, "future"),  # the exporter's clock is an hour ahead
    ("0.5", 1e12, "future"),
])
def test_values_that_are_no_measurement_are_skipped(value: object, age: float | None, reason: str) -> None:
    results = {"host_cpu": [{"metric": {"instance": "10.0.0.1:9100"}, "value": [EVAL, value]}],
               "host_memory": [entry("1073741824", instance="10.0.0.1:9100")]}
    freshness = {"host_cpu": [ages(age, instance="10.0.0.1:9100")]} if age is not None else {}
    out = convert(results, freshness, QUERIES, ["host-a"], [], NOW)
    assert out.skipped == {reason: 1}
    # the other metric keeps its own time: a wrong clock on one series does not date the whole sample
    assert out.host_samples == [HostSample("host-a", EVAL, memory_used_mib=1024.0)]


@pytest.mark.parametrize(("eval_ts", "reason"), [
    ("NaN", "malformed"), ("+Inf", "malformed"), (NOW + 3600, "future"), (0, "stale"),
])
def test_an_evaluation_time_that_is_no_time_is_not_a_sample_time(eval_ts: object, reason: str) -> None:
    # no freshness query: the sample's time is the evaluation time the answer carries
    out = convert({"host_cpu": [{"metric": {"instance": "10.0.0.1:9100"}, "value": [eval_ts, "0.5"]}]}, {},
                  QUERIES, ["host-a"], [], NOW)
    assert out.skipped == {reason: 1} and out.host_samples == []
