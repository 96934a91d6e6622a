"""Property-based: random and malformed messages thrown at a running server never crash it, never get an
INTERNAL or UNKNOWN status, and a rejected batch leaves the inventory exactly as it was."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App, build_app
from advisor.cli import EXAMPLE, push_example
from advisor.config import Settings
from advisor.domain.access import REQUIRED_ROLE, Role

pytestmark = pytest.mark.integration

EXPECTED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION"}
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, AdvisorClient]]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    app = build_app(Settings(listen="127.0.0.1:0", data_dir=data, metrics_listen="", grace_s=1.0))
    app.start()
    assert app.server is not None
    client = AdvisorClient(f"127.0.0.1:{app.server.port}", token=app.tokens.renew("fuzzer", Role.ADMIN),
                           timeout_s=20)
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    yield app, client
    client.close()
    app.stop()


def _snapshot(client: AdvisorClient) -> tuple[list[bytes], list[bytes]]:
    return (
        [h.SerializeToString(deterministic=True) for h in client.list_hosts()],
        [v.vm.SerializeToString(deterministic=True) for v in client.list_vms()],
    )


# Identifiers: mostly ones the example cluster knows, sometimes new or garbage.
ids = st.one_of(st.sampled_from(["hv-a", "hv-b", "hv-c", "db-1", "web-1", "fz-1", "fz-2"]), st.text(max_size=140))
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e308, math.nan, 1.0, 0.5]),
)
uints = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 16, 4096, 4097]))
uint64s = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 1024, 2**50]))


@st.composite
def hosts(draw: st.DrawFn) -> pb.Host:
    return pb.Host(
        id=draw(ids), cpu_cores=draw(uints), memory_mib=draw(uint64s), cpu_model=draw(st.text(max_size=300)),
        labels=draw(st.dictionaries(st.text(max_size=70), st.text(max_size=300), max_size=3)),
        in_maintenance=draw(st.booleans()), network_bandwidth_mib_s=draw(numbers),
        idle_power_w=draw(numbers), max_power_w=draw(numbers),
    )


@st.composite
def vms(draw: st.DrawFn) -> pb.Vm:
    return pb.Vm(
        id=draw(ids), host_id=draw(ids), memory_mib=draw(uint64s), vcpus=draw(uints),
        anti_affinity_groups=draw(st.lists(ids, max_size=3)), affinity_groups=draw(st.lists(ids, max_size=3)),
        postcopy_forbidden=draw(st.booleans()),
    )


inventory_requests = st.builds(
    pb.PushInventoryRequest,
    hosts=st.lists(hosts(), max_size=4), vms=st.lists(vms(), max_size=4),
    removed_host_ids=st.lists(ids, max_size=2), removed_vm_ids=st.lists(ids, max_size=2),
)


def _time(seconds: float) -> dict[str, int]:
    return {"seconds": int(seconds)}


timestamps = st.one_of(
    st.just(time.time()), st.floats(-1e12, 1e12, allow_nan=False), st.just(time.time() + 86_400.0)
).map(lambda s: _time(max(-62135596800, min(253402300799, s))))


@st.composite
def sample_requests(draw: st.DrawFn) -> pb.PushSamplesRequest:
    request = pb.PushSamplesRequest()
    for _ in range(draw(st.integers(0, 4))):
        s = request.vm_samples.add(vm_id=draw(ids))
        if draw(st.booleans()):
            s.time.CopyFrom(pb.VmSample(time=draw(timestamps)).time)
        for name in ("cpu_utilization_ratio", "memory_used_mib", "dirty_rate_mib_s"):
            if draw(st.booleans()):
                setattr(s, name, draw(numbers))
    for _ in range(draw(st.integers(0, 3))):
        h = request.host_samples.add(host_id=draw(ids))
        h.time.CopyFrom(pb.HostSample(time=draw(timestamps)).time)
        if draw(st.booleans()):
            h.cpu_utilization_ratio = draw(numbers)
    return request


def _call(action: object) -> str:
    try:
        action()  # type: ignore[operator]
    except ClientError as error:
        return error.code
    return "OK"


@FUZZ
@given(request=inventory_requests)
def test_random_inventory_pushes(server: tuple[App, AdvisorClient], request: pb.PushInventoryRequest) -> None:
    _, client = server
    before = _snapshot(client)
    code = _call(lambda: client.push_inventory(request))
    assert code in EXPECTED
    if code != "OK":
        assert _snapshot(client) == before


@FUZZ
@given(request=sample_requests())
def test_random_sample_pushes(server: tuple[App, AdvisorClient], request: pb.PushSamplesRequest) -> None:
    _, client = server
    assert _call(lambda: client.push_samples(request)) in EXPECTED


@FUZZ
@given(vm_id=ids, target=ids, downtime=numbers, deadline=numbers, dirty=st.none() | numbers)
def test_random_predictions_and_recommendations(
    server: tuple[App, AdvisorClient], vm_id: str, target: str, downtime: float, deadline: float, dirty: float | None
) -> None:
    _, client = server
    predict = pb.PredictMigrationCostRequest(vm_id=vm_id, target_host_id=target, max_downtime_ms=downtime)
    if dirty is not None:
        predict.dirty_rate_mib_s = dirty
    assert _call(lambda: client.predict(predict)) in EXPECTED
    recommend = pb.RecommendTargetRequest(
        vm_id=vm_id, objective=pb.Objective(max_downtime_ms=downtime, deadline_ms=deadline), excluded_host_ids=[target]
    )
    assert _call(lambda: client.recommend(recommend)) in EXPECTED


METHODS = [
    f"/advisor.api.v1.{service.name}/{method.name}"
    for service in pb.DESCRIPTOR.services_by_name.values()
    for method in service.methods
    if not method.client_streaming and not method.server_streaming
]


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=200))
def test_random_bytes_to_every_method(server: tuple[App, AdvisorClient], method: str, payload: bytes) -> None:
    _, client = server
    raw = client.channel.unary_unary(method)
    try:
        raw(payload, timeout=20)
    except grpc.RpcError as error:
        assert error.code().name in EXPECTED | {"UNIMPLEMENTED"}, (method, error.details())


@pytest.fixture(scope="module")
def credentials(server: tuple[App, AdvisorClient]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Metadata of callers without rights: nobody, garbage, a revoked token, a reader."""
    app, _ = server
    revoked = app.tokens.renew("fuzz-revoked", Role.ADMIN)
    app.tokens.revoke("fuzz-revoked")
    reader = app.tokens.renew("fuzz-reader", Role.READER)
    bearer = "authorization"
    return {"nobody": (), "garbage": ((bearer, "Bearer adv_" + "x" * 43),), "scheme": ((bearer, "Basic abc"),),
            "revoked": ((bearer, f"Bearer {revoked}"),), "reader": ((bearer, f"Bearer {reader}"),)}


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=200),
       who=st.sampled_from(["nobody", "garbage", "scheme", "revoked", "reader"]))
def test_random_bytes_without_the_right_credentials_change_nothing(
    server: tuple[App, AdvisorClient], credentials: dict[str, tuple[tuple[str, str], ...]], method: str,
    payload: bytes, who: str,
) -> None:
    _, client = server
    before = _snapshot(client)
    raw = client._raw_channel.unary_unary(method)
    try:
        raw(payload, timeout=20, metadata=credentials[who])
        code = "OK"
    except grpc.RpcError as error:
        code = error.code().name
    if who == "reader":
        needs = REQUIRED_ROLE[method.rsplit(".", 1)[-1]]
        assert code in (EXPECTED if needs is Role.READER else {"PERMISSION_DENIED"}), (method, code)
    else:
        assert code == "UNAUTHENTICATED", (method, who, code)
    assert _snapshot(client) == before


def test_server_still_serves_after_the_storm(server: tuple[App, AdvisorClient]) -> None:
    _, client = server
    client.push_inventory(pb.PushInventoryRequest(hosts=[pb.Host(id="after-storm", cpu_cores=4, memory_mib=4096)]))
    assert "after-storm" in {h.host.id for h in client.list_hosts()}

