"""Server reflection, both versions: v1 (`grpc.reflection.v1.ServerReflection`, what grpcurl and grpc_cli ask
first, and the only one newer clients speak) beside v1alpha.

grpcio-reflection (1.85) serves only v1alpha (grpc/grpc#38576). v1 is the same protocol under another package: its
messages have the same fields and numbers, so v1alpha's servicer answers v1's calls byte for byte. v1's descriptor,
derived from v1alpha's by renaming the package, is added to the pool so that v1 can describe itself too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA = "grpc.reflection.v1alpha"
V1 = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"


def v1_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """reflection.proto of v1, from v1alpha's: the package and every type reference renamed."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, V1
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # a message field (setting it on a scalar would make it one)
                field.type_name = field.type_name.replace(f".{V1ALPHA}.", f".{V1}.")
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{V1ALPHA}.", f".{V1}.")
            method.output_type = method.output_type.replace(f".{V1ALPHA}.", f".{V1}.")
    return proto


def _add_v1_to(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.Add(v1_descriptor())


def enable_server_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection v1alpha and v1 on `server`, listing `service_names` and both reflection services."""
    _add_v1_to(descriptor_pool.Default())
    servicer = reflection.ReflectionServicer((*service_names, reflection.SERVICE_NAME, V1_SERVICE_NAME))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE_NAME,
                                                                          {"ServerReflectionInfo": v1}),))
