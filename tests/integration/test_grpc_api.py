"""The advisor's API over real gRPC on loopback, wired exactly as `advisor serve` wires it."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example
from advisor.domain.access import Role

pytestmark = pytest.mark.integration

MakeApp = Callable[..., App]
Connect = Callable[..., AdvisorClient]


def _example() -> dict[str, object]:
    return json.loads(EXAMPLE.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def loaded(make_app: MakeApp, client_for: Connect) -> tuple[App, AdvisorClient]:
    app = make_app()
    client = client_for(app)
    push_example(client, _example(), time.time())
    return app, client


def _snapshot(client: AdvisorClient) -> tuple[list[str], list[str]]:
    return (
        [h.SerializeToString(deterministic=True).hex() for h in client.list_hosts()],
        [v.SerializeToString(deterministic=True).hex() for v in client.list_vms()],
    )


def test_inventory_is_listed_with_allocation_and_latest_samples(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    hosts = {h.host.id: h for h in client.list_hosts()}
    assert sorted(hosts) == ["hv-a", "hv-b", "hv-c", "hv-d", "hv-e"]
    assert hosts["hv-a"].vm_count == 3
    assert hosts["hv-a"].allocated_memory_mib == 8192 + 4096 + 16384
    assert hosts["hv-a"].cpu_utilization_ratio == pytest.approx(0.82)
    assert hosts["hv-e"].host.in_maintenance
    on_d = {v.vm.id for v in client.list_vms("hv-d")}
    assert on_d == {"ci-1", "ci-2"}
    db1 = next(v for v in client.list_vms("hv-a") if v.vm.id == "db-1")
    assert db1.dirty_rate_mib_s == pytest.approx(160.0)
    assert list(db1.vm.anti_affinity_groups) == ["db"]


def test_paging_walks_every_host_once(make_app: MakeApp, client_for: Connect) -> None:
    client = client_for(make_app())
    client.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(id=f"h{i:03d}", cpu_cores=4, memory_mib=1024)
                                                         for i in range(23)]))
    page = client.inventory.ListHosts(pb.ListHostsRequest(page_size=10))
    assert len(page.hosts) == 10 and page.next_page_token
    assert [h.host.id for h in client.list_hosts()] == [f"h{i:03d}" for i in range(23)]
    with pytest.raises(grpc.RpcError) as caught:
        client.inventory.ListHosts(pb.ListHostsRequest(page_token="%%%"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cost_prediction_covers_every_technique_and_names_its_model(loaded: tuple[App, AdvisorClient]) -> None:
    app, client = loaded
    result = client.predict(pb.PredictMigrationCostRequest(vm_id="db-1", target_host_id="hv-c"))
    assert [c.technique for c in result.costs] == [1, 2, 3, 4, 5, pb.TECHNIQUE_COLD]
    assert result.inputs.dirty_rate_mib_s == pytest.approx(160.0)
    assert "latest sample" in result.inputs.dirty_rate_source
    model = app.predictor.model
    *live, cold = result.costs
    for cost in result.costs:
        assert cost.total_time_ms.low <= cost.total_time_ms.median <= cost.total_time_ms.high
    for cost in live:
        assert (cost.model.name, cost.model.version) == (model.name, model.version)
    assert cold.model.name == "cold-steps"  # a sum of steps, whatever model serves the live techniques
    postcopy = live[-1]
    assert postcopy.total_time_ms.median == pytest.approx(7600 / 119.2 * 1000, rel=0.1)

    what_if = client.predict(pb.PredictMigrationCostRequest(
        vm_id="db-1", techniques=[pb.TECHNIQUE_PRECOPY], dirty_rate_mib_s=0.0, bandwidth_mib_s=1000.0))
    assert what_if.inputs.dirty_rate_source == "request override"
    assert len(what_if.costs) == 1 and what_if.costs[0].converges
    assert what_if.costs[0].total_time_ms.median < postcopy.total_time_ms.median


def test_the_busier_hosts_load_goes_into_a_prediction_and_unmeasured_stays_unset(
        loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    ask = pb.PredictMigrationCostRequest(vm_id="db-1", target_host_id="hv-c", techniques=[pb.TECHNIQUE_PRECOPY])
    assert not client.predict(ask).inputs.HasField("load_per_cpu_ratio")  # no sample says: unknown, not 0
    at = pb.VmSample(time={"seconds": int(time.time())}).time
    client.push_samples(pb.PushSamplesRequest(host_samples=[
        pb.HostSample(host_id="hv-a", time=at, load_per_cpu_ratio=2.5),
        pb.HostSample(host_id="hv-c", time=at, load_per_cpu_ratio=0.5)]))
    assert client.predict(ask).inputs.load_per_cpu_ratio == pytest.approx(2.5)  # the source, the busier


def test_the_resident_memory_of_qemu_goes_over_the_wire_and_into_a_prediction(
        loaded: tuple[App, AdvisorClient]) -> None:
    """A VM sample's resident memory (libvirt's rss) reaches the inputs a prediction is made from, and on hosts the
    physics serves (a profile the learned model does not know) the first pass is estimated from it; a VM without
    one has it unset (not measured), never 0."""
    _, client = loaded
    client.push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id="rig-1", cpu_cores=8, memory_mib=16384, labels={"advisor.profile": "rig"})],
        vms=[pb.Vm(id="cache-1", host_id="rig-1", memory_mib=4096, vcpus=2)]))
    at = pb.VmSample(time={"seconds": int(time.time())}).time
    client.push_samples(pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="cache-1", time=at, memory_used_mib=1000.0,
                                                                      dirty_rate_mib_s=0.0)]))
    ask = pb.PredictMigrationCostRequest(vm_id="cache-1", target_host_id="hv-c", techniques=[pb.TECHNIQUE_POSTCOPY])
    before = client.predict(ask)
    assert not before.inputs.HasField("resident_memory_mib")
    later = pb.VmSample(time={"seconds": at.seconds + 1}).time
    client.push_samples(pb.PushSamplesRequest(vm_samples=[pb.VmSample(
        vm_id="cache-1", time=later, memory_used_mib=1000.0, dirty_rate_mib_s=0.0, resident_memory_mib=1790.0)]))
    after = client.predict(ask)
    assert after.inputs.resident_memory_mib == 1790.0 and after.inputs.memory_mib == before.inputs.memory_mib == 1000
    # 1,000 MiB in use, but QEMU holds 1,790 MiB: the guest touched about 1,700 MiB, what post-copy's pass sends
    sent = after.costs[0].transferred_mib.median / before.costs[0].transferred_mib.median
    assert sent == pytest.approx(1.7, rel=0.02)


def test_a_vm_local_disks_go_over_the_wire_and_into_its_prediction(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    disk = pb.Disk(target="vda", size_mib=4096, used_mib=2048, shared=False, write_rate_mib_s=1.5)
    client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(id="disky", host_id="hv-a", memory_mib=1024, vcpus=1,
                                                             disks=[disk])]))
    listed = next(v.vm for v in client.list_vms("hv-a") if v.vm.id == "disky")
    assert list(listed.disks) == [disk]
    result = client.predict(pb.PredictMigrationCostRequest(vm_id="disky", techniques=[pb.TECHNIQUE_PRECOPY]))
    inputs = result.inputs
    assert (inputs.local_disk_used_mib, inputs.local_disk_size_mib, inputs.disk_write_rate_mib_s) == (2048, 4096, 1.5)
    assert "local disks: 2048 MiB in use copied first" in result.costs[0].notes[-1]


def test_recommendation_explains_every_rejected_host(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1", objective=pb.Objective(max_downtime_ms=200)))
    assert rec.state == pb.RECOMMENDATION_STATE_PROPOSED
    (move,) = rec.moves
    assert (move.source_host_id, move.target_host_id) == ("hv-a", "hv-c")
    # The answer keeps the chosen host and counts the others by filter; the full list is paged apart.
    assert [a.host_id for a in move.assessments] == ["hv-c"] and move.hosts_assessed == 5
    counts = {c.filter: (c.hosts, c.example_host_id) for c in move.rejection_counts}
    assert counts["current host"] == (1, "hv-a") and counts["disabled"] == (1, "hv-e")
    every = list(client.list_assessments(rec.id, 0, page_size=2))
    assert len(every) == 5 and every[0].host_id == "hv-c"
    why = {a.host_id: " ".join(a.rejections) for a in every}
    # every host with the filters that rejected it; the numbers behind each filter in the move's counts
    assert "current host" in why["hv-a"]
    assert "anti-affinity" in why["hv-b"]
    assert "CPU model" in why["hv-d"]
    assert "disabled" in why["hv-e"]
    assert why["hv-c"] == ""
    assert any("anti-affinity group 'db': VM db-2 runs there" in r for r in move.reasons)
    assert any("in maintenance or disabled" in r for r in move.reasons)
    # 160 MiB/s dirtied over a 119 MiB/s link: plain pre-copy cannot meet 200 ms; the choice says why.
    assert move.parameters.technique != pb.TECHNIQUE_PRECOPY
    assert any("not precopy" in r for r in move.reasons)
    assert move.parameters.max_downtime_ms == 200
    assert rec.summary.startswith("Move db-1 from hv-a to hv-c")


def test_no_eligible_target_is_a_failed_precondition_with_reasons(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    with pytest.raises(ClientError) as caught:
        client.recommend(pb.RecommendTargetRequest(vm_id="db-1", excluded_host_ids=["hv-c"]))
    assert caught.value.code == "FAILED_PRECONDITION"
    assert "hv-c: excluded by the request" in caught.value.details


def test_review_approve_reject_and_list(loaded: tuple[App, AdvisorClient], client_for: Connect) -> None:
    app, client = loaded
    alice, bob = client_for(app, Role.OPERATOR, "alice"), client_for(app, Role.OPERATOR, "bob")
    first = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    second = client.recommend(pb.RecommendTargetRequest(vm_id="web-1"))
    with pytest.raises(ClientError, match="reason") as caught:
        alice.decide(first.id, False, "")
    assert caught.value.code == "INVALID_ARGUMENT"
    # Who decided is the token's name, whatever the request claims.
    forged = pb.DecideRecommendationRequest(id=first.id, actor="mallory", reason="window 02:00")
    approved = alice.call(alice.recommendations.ApproveRecommendation, forged)
    assert (approved.state, approved.decided_by) == (pb.RECOMMENDATION_STATE_APPROVED, "alice")  # type: ignore[attr-defined]
    assert approved.HasField("decide_time")  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as caught:
        bob.decide(first.id, False, "changed my mind")
    assert caught.value.code == "FAILED_PRECONDITION" and "approved (by alice)" in caught.value.details
    rejected = bob.decide(second.id, False, "web tier frozen this week")
    assert (rejected.decision_reason, rejected.decided_by) == ("web tier frozen this week", "bob")

    listed = client.list_recommendations(pb.ListRecommendationsRequest())
    assert [r.id for r in listed.recommendations] == [second.id, first.id]
    only_approved = client.list_recommendations(pb.ListRecommendationsRequest(state=pb.RECOMMENDATION_STATE_APPROVED))
    assert [r.id for r in only_approved.recommendations] == [first.id]
    assert client.get_recommendation(first.id).moves[0].target_host_id == "hv-c"
    with pytest.raises(ClientError) as caught:
        client.get_recommendation("nope")
    assert caught.value.code == "NOT_FOUND"


def test_drain_plan_moves_every_vm_it_can_and_says_why_not_the_others(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    plan: pb.Recommendation = client.call(  # type: ignore[assignment]
        client.recommendations.PlanCluster,
        pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN, host_id="hv-b", objective=pb.Objective(max_downtime_ms=300)))
    assert plan.goal == "drain:hv-b" and plan.state == pb.RECOMMENDATION_STATE_PROPOSED
    moved = {m.vm_id: m.target_host_id for m in plan.moves}
    assert set(moved) <= {"db-2", "web-2", "gpu-1"}
    assert "hv-b" not in moved.values() and "hv-e" not in moved.values()  # never back, never into maintenance
    assert moved.get("web-2") not in ("hv-a", "hv-c")  # anti-affinity: web-1 on hv-a, web-3 on hv-c
    for move in plan.moves:
        assert move.reasons[0].startswith("vm: drain hv-b")
        assert move.predicted_cost.model.name
        if move.vm_id == "gpu-1":
            assert move.parameters.technique != pb.TECHNIQUE_POSTCOPY and not move.parameters.HasField(
                "postcopy_after_ms")  # its devices forbid post-copy
    for vm_id in {"db-2", "web-2", "gpu-1"} - set(moved):
        assert vm_id in plan.summary  # not placed, and the summary says why
    with pytest.raises(ClientError) as caught:
        client.call(client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN))
    assert caught.value.code == "INVALID_ARGUMENT" and "host_id" in caught.value.details
    with pytest.raises(ClientError) as caught:
        client.call(client.recommendations.PlanCluster, pb.PlanClusterRequest())
    assert caught.value.code == "INVALID_ARGUMENT" and "goal" in caught.value.details


def test_the_moves_of_a_plan_are_paged(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    plan: pb.Recommendation = client.call(  # type: ignore[assignment]
        client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN, host_id="hv-b"))
    assert plan.moves_total == len(plan.moves) >= 1
    seen, token = [], ""
    while True:
        page: pb.ListMovesResponse = client.call(  # type: ignore[assignment]
            client.recommendations.ListMoves, pb.ListMovesRequest(recommendation_id=plan.id, page_size=1,
                                                                  page_token=token))
        seen += [m.vm_id for m in page.moves]
        if not (token := page.next_page_token):
            break
    assert seen == [m.vm_id for m in plan.moves]
    with pytest.raises(ClientError) as caught:
        client.call(client.recommendations.ListMoves, pb.ListMovesRequest(recommendation_id="nope"))
    assert caught.value.code == "NOT_FOUND" and caught.value.details.startswith("recommendation_id:")


def test_rebalance_and_consolidate_plans(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    for goal, word in ((pb.CLUSTER_GOAL_REBALANCE, "Balance"), (pb.CLUSTER_GOAL_CONSOLIDATE, "Consolidate")):
        plan: pb.Recommendation = client.call(  # type: ignore[assignment]
            client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=goal, max_moves=3))
        assert plan.summary.startswith(word)
        assert len(plan.moves) <= 3
        assert len({m.vm_id for m in plan.moves}) == len(plan.moves)
        assert all(m.target_host_id != "hv-e" for m in plan.moves)
        assert client.get_recommendation(plan.id).summary == plan.summary


def test_execution_refuses_what_it_cannot_run(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    approved = client.decide(client.recommend(pb.RecommendTargetRequest(vm_id="web-1")).id, True)
    cases = [
        ("ExecuteMigration", pb.ExecuteMigrationRequest(recommendation_id="nope"), "NOT_FOUND", "recommendation"),
        ("ExecuteMigration", pb.ExecuteMigrationRequest(recommendation_id=rec.id), "FAILED_PRECONDITION",
         "approve it first"),
        ("AbortMigration", pb.AbortMigrationRequest(operation_id="nope"), "NOT_FOUND", "operation"),
        ("ExecuteMigration", pb.ExecuteMigrationRequest(recommendation_id=approved.id, move_index=1),
         "INVALID_ARGUMENT", "move_index"),
        ("GetMigration", pb.GetMigrationRequest(operation_id="bad id!"), "INVALID_ARGUMENT", "operation_id"),
    ]
    for method, request_msg, code, fragment in cases:
        with pytest.raises(ClientError) as caught:
            client.call(getattr(client.migrations, method), request_msg)
        assert (caught.value.code, fragment in caught.value.details) == (code, True), caught.value
    with pytest.raises(grpc.RpcError) as raised:
        list(client.migrations.WatchMigration(pb.WatchMigrationRequest(operation_id="nope"), timeout=10))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_unreachable_hypervisor_fails_the_operation_and_says_why(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    client.decide(rec.id, True)
    op = client.call(client.migrations.ExecuteMigration, pb.ExecuteMigrationRequest(recommendation_id=rec.id))
    again = client.call(client.migrations.ExecuteMigration, pb.ExecuteMigrationRequest(recommendation_id=rec.id))
    assert again.operation_id == op.operation_id  # never two migrations for one recommendation
    events = list(client.migrations.WatchMigration(pb.WatchMigrationRequest(operation_id=op.operation_id),
                                                   timeout=60))
    assert events[-1].phase == pb.MIGRATION_PHASE_FAILED
    final = client.call(client.migrations.GetMigration, pb.GetMigrationRequest(operation_id=op.operation_id))
    assert final.phase == pb.MIGRATION_PHASE_FAILED and "cannot" in final.message
    assert client.get_recommendation(rec.id).state == pb.RECOMMENDATION_STATE_FAILED


def test_health_and_reflection_serve_grpcurl(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    health = health_pb2_grpc.HealthStub(client.channel)
    for service in ("", "advisor.api.v1.RecommendationService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # What `grpcurl list` and `grpcurl describe` do: ask the reflection service.
    database = ProtoReflectionDescriptorDatabase(client.channel)
    services = set(database.get_services())
    assert {"advisor.api.v1.InventoryService", "advisor.api.v1.MigrationService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= services
    file = database.FindFileContainingSymbol("advisor.api.v1.RecommendationService")
    assert file.name == "advisor/api/v1/advisor.proto"
    methods = {m.name for m in file.service if m.name == "RecommendationService" for m in m.method}
    assert {"RecommendTarget", "ApproveRecommendation"} <= methods


NOW = time.time()


def _vm_sample(**kw: object) -> pb.VmSample:
    sample = pb.VmSample(**kw)  # type: ignore[arg-type]
    if "time" not in kw:
        sample.time.FromNanoseconds(int(NOW * 1e9))
    return sample


BAD_INVENTORY = [
    (pb.PushInventoryRequest(hosts=[pb.Host(id="n1", cpu_cores=8, memory_mib=1024),
                                    pb.Host(id="n2", cpu_cores=8, memory_mib=1024, network_bandwidth_mib_s=math.nan)]),
     "INVALID_ARGUMENT", "hosts[1].network_bandwidth_mib_s"),
    (pb.PushInventoryRequest(hosts=[pb.Host(id="n1", cpu_cores=8, memory_mib=1024),
                                    pb.Host(id="n1", cpu_cores=8, memory_mib=1024)]),
     "INVALID_ARGUMENT", "hosts[1].id"),
    (pb.PushInventoryRequest(vms=[pb.Vm(id="n", host_id="hv-a", memory_mib=1, vcpus=1),
                                  pb.Vm(id="m", host_id="hv-z", memory_mib=1, vcpus=1)]),
     "NOT_FOUND", "vms[1].host_id"),
    (pb.PushInventoryRequest(hosts=[pb.Host(id="n1", cpu_cores=8, memory_mib=2**50)]),
     "INVALID_ARGUMENT", "hosts[0].memory_mib"),
    (pb.PushInventoryRequest(hosts=[pb.Host(id="n1", cpu_cores=8, memory_mib=1024, max_power_w=-5)]),
     "INVALID_ARGUMENT", "hosts[0].max_power_w"),
    (pb.PushInventoryRequest(removed_host_ids=["hv-a"]), "INVALID_ARGUMENT", "removed_host_ids[0]"),
    (pb.PushInventoryRequest(removed_vm_ids=["ghost"]), "NOT_FOUND", "removed_vm_ids[0]"),
    (pb.PushInventoryRequest(vms=[pb.Vm(id="x" * 200, host_id="hv-a", memory_mib=1, vcpus=1)]),
     "INVALID_ARGUMENT", "vms[0].id"),
    (pb.PushInventoryRequest(hosts=[pb.Host(id=f"h{i}", cpu_cores=1, memory_mib=1) for i in range(10_001)]),
     "INVALID_ARGUMENT", "hosts: at most 10000"),
]


BAD_SAMPLES = [
    (pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", dirty_rate_mib_s=1.0),
                                       _vm_sample(vm_id="db-2", dirty_rate_mib_s=math.nan)]),
     "INVALID_ARGUMENT", "vm_samples[1].dirty_rate_mib_s"),
    (pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", dirty_rate_mib_s=1.0),
                                       _vm_sample(vm_id="db-9", dirty_rate_mib_s=1.0)]),
     "NOT_FOUND", "vm_samples[1].vm_id"),
    (pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", dirty_rate_mib_s=1.0),
                                       _vm_sample(vm_id="db-1", dirty_rate_mib_s=2.0)]),
     "INVALID_ARGUMENT", "vm_samples[1]"),
    (pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id="db-1", dirty_rate_mib_s=1.0)]),
     "INVALID_ARGUMENT", "vm_samples[0].time: is required"),
    (pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", memory_used_mib=9000.0)]),
     "INVALID_ARGUMENT", "vm_samples[0].memory_used_mib"),
    (pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", resident_memory_mib=-5.0)]),
     "INVALID_ARGUMENT", "vm_samples[0].resident_memory_mib: must be in [0"),
    (pb.PushSamplesRequest(host_samples=[pb.HostSample(host_id="hv-a", cpu_utilization_ratio=-0.1,
                                                       time=pb.VmSample(time={"seconds": int(NOW)}).time)]),
     "INVALID_ARGUMENT", "host_samples[0].cpu_utilization_ratio"),
    (pb.PushSamplesRequest(host_samples=[pb.HostSample(host_id="hv-a", load_per_cpu_ratio=1500.0,  # not per CPU
                                                       time=pb.VmSample(time={"seconds": int(NOW)}).time)]),
     "INVALID_ARGUMENT", "host_samples[0].load_per_cpu_ratio"),
]


@pytest.mark.parametrize(("request_msg", "code", "field"), [*BAD_INVENTORY, *BAD_SAMPLES])
def test_bad_push_is_rejected_whole(
    loaded: tuple[App, AdvisorClient], request_msg: pb.PushInventoryRequest | pb.PushSamplesRequest, code: str,
    field: str,
) -> None:
    _, client = loaded
    before = _snapshot(client)
    with pytest.raises(ClientError) as caught:
        if isinstance(request_msg, pb.PushInventoryRequest):
            client.push_inventory(request_msg)
        else:
            client.push_samples(request_msg)
    assert caught.value.code == code
    assert field in caught.value.details
    assert _snapshot(client) == before


def test_malformed_and_oversized_bytes_are_invalid_arguments(make_app: MakeApp, client_for: Connect) -> None:
    app = make_app(max_message_mib=1)
    client = client_for(app)
    raw = client.channel.unary_unary("/advisor.api.v1.InventoryService/PushInventory")
    for payload, fragment in [(b"\xff\xff\xff", "not a valid advisor.api.v1.PushInventoryRequest"),
                              (b"\x22\x03abc" * 300_000, "exceed the limit")]:
        with pytest.raises(grpc.RpcError) as caught:
            raw(payload, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in (caught.value.details() or "")
    assert list(client.list_hosts()) == []


def test_stream_samples_stores_each_message_until_a_bad_one(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    # Newer than the example's samples, which the fixture stamped with its own time (not NOW).
    start = int(time.time()) + 10
    batches = [pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="db-1", dirty_rate_mib_s=float(i),
                                                            time={"seconds": start + i})])
               for i in range(3)]
    reply = client.stream_samples(batches)
    assert (reply.batches_accepted, reply.vm_samples_accepted) == (3, 3)
    bad = [*batches[:2], pb.PushSamplesRequest(vm_samples=[_vm_sample(vm_id="nope")])]
    with pytest.raises(ClientError) as caught:
        client.stream_samples(bad)
    assert caught.value.code == "NOT_FOUND"
    assert "message[2].vm_samples[0].vm_id" in caught.value.details
    db1 = next(v for v in client.list_vms("hv-a") if v.vm.id == "db-1")
    assert db1.dirty_rate_mib_s == 2.0


def test_restart_keeps_inventory_and_recommendations(make_app: MakeApp, client_for: Connect, tmp_path: Path) -> None:
    data = tmp_path / "persist"
    first = make_app(data_dir=data)
    client = client_for(first)
    push_example(client, _example(), time.time())
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    client.decide(rec.id, True)
    before = [h.host.SerializeToString(deterministic=True) for h in client.list_hosts()]
    first.stop()

    second = make_app(data_dir=data)
    client2 = client_for(second)
    assert [h.host.SerializeToString(deterministic=True) for h in client2.list_hosts()] == before
    again = client2.get_recommendation(rec.id)
    assert again.state == pb.RECOMMENDATION_STATE_APPROVED
    assert again.moves[0].target_host_id == rec.moves[0].target_host_id


def test_metrics_endpoint_counts_calls_and_samples(make_app: MakeApp, client_for: Connect) -> None:
    app = make_app(metrics_listen="127.0.0.1:0")
    client = client_for(app)
    push_example(client, _example(), time.time())
    with pytest.raises(ClientError):
        client.push_inventory(pb.PushInventoryRequest(removed_vm_ids=["ghost"]))
    text = urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=5).read().decode()
    push = 'grpc_method="PushInventory",grpc_service="advisor.api.v1.InventoryService",grpc_type="unary"'
    assert f'grpc_server_handled_total{{grpc_code="OK",{push}}} 1.0' in text
    assert f'grpc_server_handled_total{{grpc_code="NotFound",{push}}} 1.0' in text
    assert f'grpc_server_started_total{{{push}}} 2.0' in text
    assert 'advisor_samples_ingested_total{kind="vm"} 5.0' in text
    assert 'advisor_inventory{kind="host"} 5.0' in text
    assert "advisor_cost_model_info{" in text


def test_with_a_history_the_prediction_uses_the_dirty_rate_forecast(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    now = time.time()
    history = pb.PushSamplesRequest()
    for i in range(40):  # two minutes of bursty dirtying, one reading every 3 s
        sample = history.vm_samples.add(vm_id="db-2", dirty_rate_mib_s=30.0 + (25.0 if i % 4 == 0 else 0.0),
                                        cpu_utilization_ratio=0.5)
        sample.time.FromNanoseconds(int((now - 120 + 3 * i) * 1e9))
    client.push_samples(history)
    result = client.predict(pb.PredictMigrationCostRequest(vm_id="db-2", target_host_id="hv-c"))
    assert "forecast by" in result.inputs.dirty_rate_source, result.inputs.dirty_rate_source
    assert 25.0 <= result.inputs.dirty_rate_mib_s <= 60.0
    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-2"))
    assert any("forecast by" in reason for reason in rec.moves[0].reasons)


def test_one_proposal_per_question_a_dry_run_stores_nothing_and_an_empty_plan_is_not_queued(
        loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    dry = client.recommend(pb.RecommendTargetRequest(vm_id="db-1", dry_run=True))
    assert dry.id == "" and dry.moves[0].target_host_id == "hv-c"
    assert list(client.list_recommendations(pb.ListRecommendationsRequest()).recommendations) == []
    first = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    second = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    old = client.get_recommendation(first.id)
    assert (old.state, old.superseded_by) == (pb.RECOMMENDATION_STATE_SUPERSEDED, second.id)
    assert f"supersedes proposed recommendation {first.id} (target:db-1)" in second.moves[0].reasons
    listed = client.list_recommendations(pb.ListRecommendationsRequest(state=pb.RECOMMENDATION_STATE_SUPERSEDED))
    assert [r.id for r in listed.recommendations] == [first.id]
    plan: pb.Recommendation = client.call(  # type: ignore[assignment]
        client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN, host_id="hv-a"))
    assert f"db-1 is also moved by proposed recommendation {second.id} (target:db-1)" in next(
        m for m in plan.moves if m.vm_id == "db-1").reasons
    assert f"db-1 by proposed recommendation {second.id}" in plan.summary
    for store_empty in (False, True):  # a bound of 1 move cannot empty a host of hv-a's three VMs or any other
        empty: pb.Recommendation = client.call(  # type: ignore[assignment]
            client.recommendations.PlanCluster, pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_CONSOLIDATE, max_moves=1,
                                                                      store_empty=store_empty))
        assert not empty.moves and "Nothing emptied: " in empty.summary
        assert bool(empty.id) is store_empty


def test_the_downtime_limit_has_one_meaning(loaded: tuple[App, AdvisorClient]) -> None:
    _, client = loaded
    unset = client.recommend(pb.RecommendTargetRequest(vm_id="web-1", objective=pb.Objective(), dry_run=True))
    assert unset.moves[0].parameters.max_downtime_ms == 300
    assert any("allowed downtime 300 ms" in r for r in unset.moves[0].reasons)
    for bad in (0.0, -1.0, 4e6):
        with pytest.raises(ClientError) as caught:
            client.recommend(pb.RecommendTargetRequest(vm_id="web-1", objective=pb.Objective(max_downtime_ms=bad)))
        assert caught.value.code == "INVALID_ARGUMENT" and "objective.max_downtime_ms" in caught.value.details
    with pytest.raises(ClientError) as caught:
        client.call(client.recommendations.PlanCluster, pb.PlanClusterRequest(
            goal=pb.CLUSTER_GOAL_REBALANCE, objective=pb.Objective(max_downtime_ms=0)))
    assert caught.value.code == "INVALID_ARGUMENT" and "must be in [1, 3.6e+06]" in caught.value.details
