"""What a hostile or careless client sends, against a real server: URIs that would run programs, read files or
probe ports; streams that stay silent; answers too big for standard clients; ids and text that would echo
megabytes or forge lines; impossible figures. Nothing of it may hurt the host or lie."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.api import servicers
from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Host, Vm

pytestmark = pytest.mark.integration

MakeApp = Callable[..., App]
Connect = Callable[..., AdvisorClient]


@pytest.fixture
def marker(tmp_path: Path) -> tuple[Path, Path]:
    """A program that leaves a file behind if anything ever runs it."""
    witness = tmp_path / "ran"
    program = tmp_path / "marker.sh"
    program.write_text(f"#!/bin/sh\ntouch {witness}\nexec cat\n")
    os.chmod(program, 0o755)
    return program, witness


def test_uris_outside_the_allow_list_are_refused_and_never_connected_to(
    make_app: MakeApp, client_for: Connect, marker: tuple[Path, Path], tmp_path: Path
) -> None:
    program, witness = marker
    app = make_app(dirty_rate_interval_s=0.2)
    client = client_for(app)
    secret = tmp_path / "secret.txt"
    secret.write_text("the first line of a file the caller must not read\n")
    hostile = [f"qemu+ext:///system?command={program}", f"test://{secret}", "qemu+tcp://h/system?no_verify=1",
               "qemu+ssh://h/system?keyfile=/root/.ssh/id_rsa", "qemu+unix:///system?socket=/run/x",
               "qemu+tcp://h/session", "qemu+tcp://h/system#frag", "qemu+tls://h/system?command=x&command=y",
               "qemu+tcp://h/system?comm%61nd=x"]
    for uri in hostile:
        request = pb.PushInventoryRequest(hosts=[pb.Host(id="evil", cpu_cores=4, memory_mib=4096, hypervisor_uri=uri)])
        with pytest.raises(ClientError) as refused:
            client.push_inventory(request)
        assert refused.value.code == "INVALID_ARGUMENT", uri
        assert refused.value.details.startswith("hosts[0].hypervisor_uri: is not a hypervisor URI this advisor may")
        assert secret.name not in refused.value.details and str(program) not in refused.value.details
    assert list(client.list_hosts()) == []
    client.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(id="ok", cpu_cores=4, memory_mib=4096,
                                                                 hypervisor_uri="qemu+tls://ok.example/system")]))

    # A host stored before the list was narrowed (written to the database directly) is not contacted either:
    # neither the dirty-rate collector nor an execution connects.
    app.store.apply_inventory(InventoryChange(
        hosts=(Host("stored", 4, 4096, hypervisor_uri=f"qemu+ext:///system?command={program}"),
               Host("dst", 4, 4096, hypervisor_uri=f"qemu+ext:///system?command={program}")),
        vms=(Vm("v", "stored", 512, 1),)))
    app.stop()
    again = make_app(data_dir=app.settings.data_dir, dirty_rate_interval_s=0.2,
                     connect=LibvirtHypervisor)  # the real adapter: it would run the program if asked
    client = client_for(again)
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="v", excluded_host_ids=["ok"]))
    client.decide(rec.id, True)
    op = client.execute(rec.id)
    final = list(client.watch(op.operation_id, timeout_s=30))[-1]
    assert final.phase == pb.MIGRATION_PHASE_FAILED and "refused to connect" in final.message
    time.sleep(1.0)  # several collector rounds
    assert not witness.exists()


def test_idle_streams_never_delay_a_health_check_or_a_unary_call(make_app: MakeApp, client_for: Connect) -> None:
    app = make_app(max_concurrent_streams=4, stream_idle_timeout_s=3.0)
    client = client_for(app)
    stop = threading.Event()
    outcomes: list[str] = []

    def silent() -> object:
        while not stop.wait(0.05):
            pass
        return iter(())

    def idle_stream() -> None:
        try:
            client.telemetry.StreamSamples(iter(silent, None), timeout=30)  # type: ignore[arg-type]
            outcomes.append("OK")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)

    threads = [threading.Thread(target=idle_stream) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert app.server is not None
    with grpc.insecure_channel(f"127.0.0.1:{app.server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(5):
            started = time.monotonic()
            health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert time.monotonic() - started < 1.0
    started = time.monotonic()
    assert list(client.list_hosts()) == []
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(20)
    stop.set()
    # Four held a place until they were ended for silence; the twelve others were told at once.
    assert sorted(outcomes) == ["DEADLINE_EXCEEDED"] * 4 + ["RESOURCE_EXHAUSTED"] * 12, outcomes


def test_every_answer_fits_a_standard_client(make_app: MakeApp, client_for: Connect,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    client = client_for(app)
    hosts = [pb.Host(id=f"h{i:04d}", cpu_cores=64, memory_mib=262_144, cpu_model="m") for i in range(600)]
    vms = [pb.Vm(id=f"v{i:05d}", host_id=f"h{i % 600:04d}", memory_mib=2048, vcpus=2) for i in range(3000)]
    client.push_inventory(pb.PushInventoryRequest(hosts=hosts, vms=vms))
    made = [client.recommend(pb.RecommendTargetRequest(vm_id=f"v{i:05d}")) for i in range(30)]
    plan = client.call(client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN,
                                                                                 host_id="h0000"))
    for rec in [*made, plan]:
        assert rec.ByteSize() < 4 << 20  # type: ignore[attr-defined]
        for move in rec.moves:  # type: ignore[attr-defined]
            assert move.hosts_assessed == 600 and len(move.assessments) <= 6
    every = list(client.list_assessments(made[0].id, 0, page_size=250))
    assert len(every) == 600 and len({a.host_id for a in every}) == 600
    # Pages stop by size as well as by count: with a small budget, a listing needs several pages and
    # still returns every recommendation exactly once.
    monkeypatch.setattr(servicers, "PAGE_BYTES", 20_000)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = client.list_recommendations(pb.ListRecommendationsRequest(page_size=5000, page_token=token))
        assert page.ByteSize() < 40_000 and len(page.recommendations) >= 1
        assert all(not m.assessments for r in page.recommendations for m in r.moves)
        seen += [r.id for r in page.recommendations]
        pages += 1
        if not (token := page.next_page_token):
            break
    assert pages > 1 and sorted(seen) == sorted(r.id for r in [*made, plan])  # type: ignore[attr-defined]


def test_ids_text_and_figures_are_bounded_and_checked(make_app: MakeApp, client_for: Connect) -> None:
    app = make_app()
    client = client_for(app)
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: client.recommend(pb.RecommendTargetRequest(vm_id="x" * (4 << 20))), "vm_id: must be 1-128"),
        (lambda: client.predict(pb.PredictMigrationCostRequest(vm_id="db-1\nforged")), "vm_id: must be 1-128"),
        (lambda: client.decide("a" * 129, False, "no"), "id: must be 1-128"),
        (lambda: client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(
            id="huge", host_id="hv-a", memory_mib=24 << 20, vcpus=1)])), "more than its host"),
        (lambda: client.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(
            id="slow", cpu_cores=1, memory_mib=1024, network_bandwidth_mib_s=1e-9)])), "must be in [1, 200000]"),
        (lambda: client.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(
            id="lbl", cpu_cores=1, memory_mib=1024, labels={"owner": "bob\x1b[2J"})])), "control characters"),
        (lambda: client.push_samples(pb.PushSamplesRequest(vm_samples=[pb.VmSample(
            vm_id="db-1", time={"seconds": int(time.time()), "nanos": 1_999_999_999})])), "time.nanos"),
        (lambda: client.push_samples(pb.PushSamplesRequest(vm_samples=[pb.VmSample(
            vm_id="db-1", time={"seconds": 4_102_444_800})])), "must be between 2000-01-01T00:00:00Z and"),
        (lambda: client.predict(pb.PredictMigrationCostRequest(vm_id="db-1", bandwidth_mib_s=1e-9)),
         "bandwidth_mib_s: must be in [1,"),
        (lambda: client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(
            id="disky", host_id="hv-a", memory_mib=512, vcpus=1,
            disks=[pb.Disk(target="vda", size_mib=10, used_mib=20)])])), "used_mib: must not exceed size_mib"),
        (lambda: client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(
            id="disky", host_id="hv-a", memory_mib=512, vcpus=1,
            disks=[pb.Disk(target="vda;rm", size_mib=10)])])), "must be a device name"),
    ]
    for call, fragment in cases:
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.code == "INVALID_ARGUMENT", (fragment, refused.value)
        assert fragment in refused.value.details, refused.value.details
        assert len(refused.value.details) < 600  # never an echo of what was sent
    rejected = client.recommend(pb.RecommendTargetRequest(vm_id="web-1"))
    with pytest.raises(ClientError, match="control characters"):
        client.decide(rejected.id, False, "fine\ndecided by root: approved")
    with pytest.raises(ClientError) as unknown:
        client.recommend(pb.RecommendTargetRequest(vm_id="y" * 128))
    assert unknown.value.code == "NOT_FOUND" and len(unknown.value.details) < 200


def test_recent_samples_survive_a_restart_and_an_unknown_rate_is_never_idle(make_app: MakeApp,
                                                                             client_for: Connect) -> None:
    app = make_app()
    client = client_for(app)
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    known = client.predict(pb.PredictMigrationCostRequest(vm_id="db-1", target_host_id="hv-c"))
    assert known.inputs.dirty_rate_mib_s == pytest.approx(160)  # the example's sample
    client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(id="quiet", host_id="hv-c", memory_mib=1024, vcpus=1)]))
    app.stop()
    again = make_app(data_dir=app.settings.data_dir)
    client = client_for(again)
    after = client.predict(pb.PredictMigrationCostRequest(vm_id="db-1", target_host_id="hv-c"))
    assert after.inputs.dirty_rate_mib_s == pytest.approx(160) and "latest sample" in after.inputs.dirty_rate_source
    unknown = client.predict(pb.PredictMigrationCostRequest(vm_id="quiet", target_host_id="hv-d"))
    assert "unknown" in unknown.inputs.dirty_rate_source and unknown.inputs.dirty_rate_mib_s > 100
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="quiet"))
    # pre-copy cannot be trusted to converge alone: post-copy, or auto-converge with a planned switch to post-copy
    # (post-copy's exposure is priced against pre-copy's risk since issue 17)
    params = rec.moves[0].parameters
    assert params.technique == pb.TECHNIQUE_POSTCOPY or (
        params.technique == pb.TECHNIQUE_PRECOPY_AUTOCONVERGE and params.postcopy_after_ms > 0), params
