"""Server reflection v1 (what grpcurl and grpc_cli ask first) beside v1alpha, with a token like the rest: a v1
client lists the services and reads their descriptors, the v1 service's own included."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from advisor.api.reflection import V1_SERVICE_NAME
from advisor.app import App
from advisor.domain.access import Role

MakeApp = Callable[..., App]
V1_METHOD = f"/{V1_SERVICE_NAME}/ServerReflectionInfo"


def ask_v1(app: App, request: reflection_pb2.ServerReflectionRequest,
           metadata: tuple[tuple[str, str], ...]) -> reflection_pb2.ServerReflectionResponse:
    """One request on reflection v1, as a v1 client sends it (v1's messages are v1alpha's, field for field)."""
    assert app.server is not None
    with grpc.insecure_channel(f"127.0.0.1:{app.server.port}") as channel:
        call = channel.stream_stream(V1_METHOD,
                                     request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        (answer,) = list(call(iter([request]), timeout=10, metadata=metadata))
    return answer


def test_a_v1_client_lists_the_services_and_reads_their_descriptors(make_app: MakeApp) -> None:
    app = make_app()
    token = (("authorization", f"Bearer {app.tokens.renew('reader', Role.READER)}"),)
    listed = ask_v1(app, reflection_pb2.ServerReflectionRequest(list_services=""), token)
    names = {s.name for s in listed.list_services_response.service}
    assert {"advisor.api.v1.RecommendationService", "advisor.api.v1.MigrationService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection", V1_SERVICE_NAME} <= names

    for symbol, package, service in (("advisor.api.v1.RecommendationService", "advisor.api.v1",
                                      "RecommendationService"),
                                     (V1_SERVICE_NAME, "grpc.reflection.v1", "ServerReflection")):
        found = ask_v1(app, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol), token)
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in found.file_descriptor_response.file_descriptor_proto]
        described = next(f for f in files if f.package == package)
        assert service in {s.name for s in described.service}, symbol
    v1 = next(f for f in files if f.package == "grpc.reflection.v1")
    method = v1.service[0].method[0]
    assert (method.input_type, method.output_type) == (".grpc.reflection.v1.ServerReflectionRequest",
                                                        ".grpc.reflection.v1.ServerReflectionResponse")


def test_reflection_v1_needs_a_token(make_app: MakeApp) -> None:
    app = make_app()
    with pytest.raises(grpc.RpcError) as refused:
        ask_v1(app, reflection_pb2.ServerReflectionRequest(list_services=""), ())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
