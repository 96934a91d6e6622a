"""Who gets in and what they may do, against a real server on loopback: every RPC under every role, missing,
revoked and forged credentials, the actor on the record, the audit trail, and revocation while serving."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example
from advisor.domain.access import REQUIRED_ROLE, Role

pytestmark = pytest.mark.integration

MakeApp = Callable[..., App]
Connect = Callable[..., AdvisorClient]
METHODS = [(service.name, method) for service in pb.DESCRIPTOR.services_by_name.values() for method in service.methods]


def _channel(app: App) -> grpc.Channel:
    assert app.server is not None
    return grpc.insecure_channel(f"127.0.0.1:{app.server.port}")


def _call(channel: grpc.Channel, service: str, method: Any, metadata: tuple[tuple[str, str], ...]) -> str:
    """Call one RPC with an empty request; the status code's name."""
    path = f"/advisor.api.v1.{service}/{method.name}"
    request = getattr(pb, method.input_type.name)()
    try:
        if method.client_streaming:
            channel.stream_unary(path, request_serializer=type(request).SerializeToString)(
                iter([request]), timeout=10, metadata=metadata)
        elif method.server_streaming:
            list(channel.unary_stream(path, request_serializer=type(request).SerializeToString)(
                request, timeout=10, metadata=metadata))
        else:
            channel.unary_unary(path, request_serializer=type(request).SerializeToString)(
                request, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        return str(error.code().name)
    return "OK"


def test_every_rpc_of_the_api_has_a_required_role() -> None:
    assert {f"{service}/{method.name}" for service, method in METHODS} == set(REQUIRED_ROLE)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_do_exactly_what_it_may(make_app: MakeApp, role: Role) -> None:
    app = make_app()
    token = app.tokens.renew(f"who-{role.label}", role)
    with _channel(app) as channel:
        for service, method in METHODS:
            code = _call(channel, service, method, (("authorization", f"Bearer {token}"),))
            allowed = role >= REQUIRED_ROLE[f"{service}/{method.name}"]
            if allowed:
                assert code not in ("PERMISSION_DENIED", "UNAUTHENTICATED", "INTERNAL", "UNKNOWN"), (method.name, code)
            else:
                assert code == "PERMISSION_DENIED", (role, method.name, code)


def test_missing_revoked_and_forged_credentials_get_nothing(make_app: MakeApp) -> None:
    app = make_app()
    good = app.tokens.renew("soon-revoked", Role.ADMIN)
    app.tokens.revoke("soon-revoked")
    other = make_app(data_dir=app.settings.data_dir.parent / "other")
    foreign = other.tokens.renew("elsewhere", Role.ADMIN)  # valid on another advisor, not this one
    live = app.tokens.renew("live", Role.ADMIN)
    cases = {
        "none": (),
        "revoked": (("authorization", f"Bearer {good}"),),
        "foreign": (("authorization", f"Bearer {foreign}"),),
        "forged": (("authorization", "Bearer adv_" + "A" * 43),),
        "malformed": (("authorization", "Bearer not-a-token"),),
        "wrong scheme": (("authorization", f"Basic {good}"),),
        "empty": (("authorization", "Bearer "),),
        # two headers, whichever order: a valid one beside a forged one grants nothing
        "two, forged first": (("authorization", "Bearer adv_" + "A" * 43), ("authorization", f"Bearer {live}")),
        "two, valid first": (("authorization", f"Bearer {live}"), ("authorization", "Bearer adv_" + "A" * 43)),
        "the same twice": (("authorization", f"Bearer {live}"), ("authorization", f"Bearer {live}")),
    }
    with _channel(app) as channel:
        for why, metadata in cases.items():
            for service, method in METHODS:
                assert _call(channel, service, method, metadata) == "UNAUTHENTICATED", (why, method.name)
        # Health checking stays open; reflection (what grpcurl uses) needs a valid caller.
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ServerReflectionInfo(iter([ask]), timeout=5))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reader = app.tokens.renew("reader", Role.READER)
        answers = list(stub.ServerReflectionInfo(iter([ask]), timeout=5,
                                                 metadata=(("authorization", f"Bearer {reader}"),)))
        names = {s.name for s in answers[0].list_services_response.service}
        assert "advisor.api.v1.RecommendationService" in names


def test_the_actor_is_the_token_and_the_audit_trail_says_who_did_what(make_app: MakeApp,
                                                                      client_for: Connect) -> None:
    app = make_app()
    scheduler = client_for(app, Role.SCHEDULER, "planner")
    operator = client_for(app, Role.OPERATOR, "sre-alice")
    push_example(scheduler, json.loads(EXAMPLE.read_text()), time.time())
    rec = scheduler.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    with pytest.raises(ClientError) as denied:
        scheduler.decide(rec.id, True)
    assert denied.value.code == "PERMISSION_DENIED" and "planner (scheduler) may not call" in denied.value.details
    forged = pb.DecideRecommendationRequest(id=rec.id, actor="root", reason="ok")
    decided = operator.call(operator.recommendations.ApproveRecommendation, forged)
    assert decided.decided_by == "sre-alice"  # type: ignore[attr-defined]
    entries = app.audit.recent(50)
    calls = [(e.actor, e.call, e.outcome) for e in entries]
    assert ("sre-alice", "RecommendationService/ApproveRecommendation", "OK") in calls
    assert ("planner", "RecommendationService/ApproveRecommendation", "PERMISSION_DENIED") in calls
    assert ("planner", "RecommendationService/RecommendTarget", "OK") in calls
    assert ("planner", "InventoryService/PushInventory", "OK") in calls
    approve = next(e for e in entries if e.actor == "sre-alice")
    assert approve.target == rec.id and approve.peer.startswith(("ipv4:127.0.0.1", "ipv6:"))
    with _channel(app) as channel:
        _call(channel, "InventoryService", pb.DESCRIPTOR.services_by_name["InventoryService"].methods[1], ())
    anonymous = app.audit.recent(1)[0]
    assert (anonymous.actor, anonymous.outcome) == ("anonymous", "UNAUTHENTICATED")


def test_a_token_revoked_with_the_cli_stops_working_on_the_next_call(make_app: MakeApp,
                                                                     client_for: Connect) -> None:
    app = make_app()
    client = client_for(app, Role.READER, "to-revoke")
    assert list(client.list_hosts()) == []
    listed = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "list", "--json", "--data-dir",
                             str(app.settings.data_dir)], capture_output=True, text=True, timeout=60, check=True)
    tokens = {t["name"]: t for t in json.loads(listed.stdout)["tokens"]}
    assert tokens["to-revoke"]["role"] == "reader" and tokens["to-revoke"]["revoked"] is None
    assert "adv_" not in listed.stdout  # only hashes are stored; nothing prints a token again
    subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "revoke", "to-revoke", "--data-dir",
                    str(app.settings.data_dir)], capture_output=True, text=True, timeout=60, check=True)
    with pytest.raises(ClientError) as refused:
        list(client.list_hosts())
    assert refused.value.code == "UNAUTHENTICATED"
    stored = app.store.database.connection.execute("SELECT hash FROM tokens WHERE name = 'to-revoke'").fetchone()
    assert stored is not None and len(stored[0]) == 64 and not stored[0].startswith("adv_")


def test_a_refused_call_is_audited_in_words_not_as_bytes(make_app: MakeApp, client_for: Connect) -> None:
    app = make_app()
    reader = client_for(app, Role.READER, "curious")
    with pytest.raises(ClientError):
        reader.get_recommendation("no-such-id")
    entry = next(e for e in app.audit.recent(10) if e.call == "RecommendationService/GetRecommendation")
    assert entry.outcome == "NOT_FOUND"
    assert entry.detail.startswith("id: unknown recommendation 'no-such-id'"), entry.detail
