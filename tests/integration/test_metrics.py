"""The advisor's /metrics as a real server exports it: base units, gRPC's metrics under the names stock
dashboards query, refused calls by code, the review backlog, process metrics; and the Grafana dashboard in
docs/grafana queries only metrics the server exports."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example
from advisor.domain.access import Role

MakeApp = Callable[..., App]
Connect = Callable[..., AdvisorClient]
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "advisor.json"
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count", "_created"), "counter": ("_created",),
            "summary": ("_sum", "_count", "_created")}


def exported(text: str) -> set[str]:
    """Every series name the exposition offers, those of labelled families without a child yet included."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {name, *(name.removesuffix("_total") + s for s in SUFFIXES.get(kind, ()))}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def queried(dashboard: dict[str, Any]) -> set[str]:
    """The metric names in the dashboard's queries and variables (PromQL functions and labels are not)."""
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    bare = [re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e) for e in exprs]  # label lists
    return {name for e in bare for name in re.findall(r"\b((?:advisor|grpc|process)_[a-z_]+)\b", e)}


@pytest.fixture
def scraped(make_app: MakeApp, client_for: Connect) -> str:
    app = make_app(metrics_listen="127.0.0.1:0")
    scheduler = client_for(app, Role.SCHEDULER, "planner")
    push_example(scheduler, json.loads(EXAMPLE.read_text()), time.time())
    scheduler.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    with pytest.raises(ClientError):
        scheduler.decide("anything", True)  # a scheduler may not approve: PERMISSION_DENIED
    assert app.server is not None
    # No token: UNAUTHENTICATED.
    with grpc.insecure_channel(f"127.0.0.1:{app.server.port}") as channel, pytest.raises(grpc.RpcError):
        channel.unary_unary("/advisor.api.v1.InventoryService/ListHosts",
                            request_serializer=pb.ListHostsRequest.SerializeToString)(pb.ListHostsRequest(), timeout=10)
    url = f"http://127.0.0.1:{app.metrics_port}/metrics"
    return str(urllib.request.urlopen(url, timeout=10).read().decode())


def test_the_server_exports_what_dashboards_and_alerts_need(scraped: str) -> None:
    names = exported(scraped)
    push = 'grpc_method="PushInventory",grpc_service="advisor.api.v1.InventoryService",grpc_type="unary"'
    assert f'grpc_server_started_total{{{push}}} 1.0' in scraped
    assert f'grpc_server_handled_total{{grpc_code="OK",{push}}} 1.0' in scraped
    assert f'grpc_server_handling_seconds_count{{{push}}} 1.0' in scraped
    assert 'grpc_code="Unauthenticated",grpc_method="ListHosts"' in scraped  # refused calls are counted too
    assert 'advisor_rpc_refused_total{code="UNAUTHENTICATED"} 1.0' in scraped
    assert 'advisor_rpc_refused_total{code="PERMISSION_DENIED"} 1.0' in scraped
    assert re.search(r'advisor_review_backlog\{priority="\d",state="proposed"\} 1\.0', scraped)
    assert 'advisor_review_backlog{priority="1",state="approved"} 0.0' in scraped  # present when empty
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} <= names
    assert {"advisor_migration_downtime_seconds_bucket", "advisor_prediction_error_ratio"} <= names
    assert "advisor_rpc_requests_total" not in names


def test_every_metric_is_in_base_units(scraped: str) -> None:
    off = {n for n in exported(scraped) if re.search(r"_(mib|kib|mb|ms|mib_s|minutes|percent)(_|$)", n)}
    assert not off, off


def test_the_grafana_dashboard_queries_only_metrics_the_server_exports(scraped: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = queried(dashboard)
    assert {"advisor_migration_downtime_seconds_bucket", "advisor_review_backlog", "advisor_rpc_refused_total",
            "grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "advisor_prediction_error_ratio",
            "process_cpu_seconds_total", "advisor_http_refusals_total", "advisor_leader"} <= wanted
    missing = wanted - exported(scraped)
    assert not missing, f"the dashboard queries metrics the server does not export: {sorted(missing)}"
    assert all(p["targets"] and p["gridPos"]["w"] <= 24 for p in dashboard["panels"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_a_client_that_cancels_a_stream_is_counted_as_cancelled_not_as_an_incident(
        make_app: MakeApp, client_for: Connect, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    client = client_for(app)
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    caplog.set_level(logging.INFO, logger="advisor.api")

    def first_then_fail() -> Iterator[pb.PushSamplesRequest]:
        yield pb.PushSamplesRequest()
        time.sleep(0.5)  # the server has the first message
        raise RuntimeError("the client gives up")

    with pytest.raises(grpc.RpcError):  # gRPC's client says UNKNOWN, "Exception iterating requests!"
        client.telemetry.StreamSamples(first_then_fail(), timeout=30)
    url = f"http://127.0.0.1:{app.metrics_port}/metrics"
    stream = 'grpc_method="StreamSamples",grpc_service="advisor.api.v1.TelemetryService",grpc_type="client_stream"'
    # Cancelled, as the server sees it almost always; now and then grpc's server sees the cancel as the end of the
    # request stream (its read completes empty before the cancel is marked: grpc/_server.py, _look_for_request),
    # and the call, all of whose messages were stored, ends OK. Never an incident.
    ended = [f'grpc_server_handled_total{{grpc_code="{code}",{stream}}} 1.0' for code in ("Canceled", "OK")]
    for _ in range(50):  # the server ends its side of the call a moment after the client
        scraped = urllib.request.urlopen(url, timeout=10).read().decode()
        if any(line in scraped for line in ended):
            break
        time.sleep(0.1)
    assert any(line in scraped for line in ended), [
        line[:40] + line[-60:] for line in scraped.splitlines() if "StreamSamples" in line and "handled_total" in line]
    assert 'grpc_code="Internal"' not in scraped
    assert not [r for r in caplog.records if r.getMessage() == "internal error"]
